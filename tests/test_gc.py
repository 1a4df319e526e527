"""Garbage collection: superseded files and crash orphans go after the retention, live files never."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq

from common.errors import StoreError
from partitions import collect_garbage, layout
from partitions.delta import DataFile, lake_for
from partitions.schema import PING_SCHEMA
from partitions.store import ObjectStore
from tests.support.pings import sim_table, simulator

TABLE = layout.raw_table("pings")


def _files(tmp: Path, n: int) -> list[tuple[str, Path, int]]:
    """n different month files of fleet-a, 2025-02, as (key, local path, rows)."""
    table = sim_table(simulator(vehicles=1, interval=60), ["2025-02"])
    out = []
    for i in range(n):
        part = table.slice(0, table.num_rows - i).select(PING_SCHEMA.names).cast(PING_SCHEMA)
        path = tmp / f"f{i}.parquet"
        pq.write_table(part, path)
        out.append((layout.raw_file("pings", "fleet-a", "2025-02", f"content{i}"), path, part.num_rows))
    return out


def _commit(store: ObjectStore, key: str, path: Path, rows: int) -> bool:
    store.put_file(key, path)  # as the writer does: (re)upload, then commit
    return lake_for(store).commit_window(TABLE, PING_SCHEMA, "fleet-a", "2025-02",
                                         [DataFile(key, path.stat().st_size, rows)], {"fleetlake.test": "1"})


def _parquet(store: ObjectStore) -> set[str]:
    return {o.key for o in store.list("raw/") if o.key.endswith(".parquet")}


def _snapshot(store: ObjectStore) -> set[str]:
    return {f.key for files in lake_for(store).live_files(TABLE).values() for f in files}


def test_superseded_files_stay_for_the_retention_then_go(store: ObjectStore, tmp_path: Path) -> None:
    (a, pa_, ra), (b, pb, rb) = _files(tmp_path, 2)
    _commit(store, a, pa_, ra)
    _commit(store, b, pb, rb)
    orphan = layout.raw_file("pings", "fleet-a", "2025-02", "crashedbeforecommit")
    store.put_file(orphan, pa_)  # a write that crashed before its Delta commit
    assert _snapshot(store) == {b} and _parquet(store) == {a, b, orphan}
    assert collect_garbage(store, retention_hours=24).removed == ()  # queries may still read them
    dry = collect_garbage(store, retention_hours=0, dry_run=True)
    assert {f.key for f in dry.removed} == {a, orphan} and _parquet(store) == {a, b, orphan}
    report = collect_garbage(store, retention_hours=0)
    assert {f.key for f in report.removed} == {a, orphan}
    assert report.bytes_freed == 2 * pa_.stat().st_size
    assert _parquet(store) == _snapshot(store) == {b}


def test_gc_never_deletes_a_file_the_snapshot_names_under_concurrent_commits(tmp_path: Path) -> None:
    """Windows return to earlier content-named files (A, B, A, ...), whose old removals are expired
    tombstones; a vacuum racing the re-commit must not delete the file the new snapshot names."""
    from partitions.store import LocalStore

    store = LocalStore(tmp_path / "store")
    files = _files(tmp_path, 2)
    _commit(store, *files[0])
    done = threading.Event()
    violations: list[str] = []
    removed: list[str] = []
    commits = retried = 0

    errors: list[BaseException] = []

    def vacuum() -> None:
        try:
            # A short pause between passes: a Lock is not fair, and a vacuum re-taking it at once
            # would starve the committer instead of racing it.
            while not done.wait(0.002):
                removed.extend(f.key for f in collect_garbage(store, retention_hours=0).removed)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    gc = threading.Thread(target=vacuum)
    gc.start()
    try:
        for i in range(1, 31):
            key, path, rows = files[i % 2]
            while True:
                try:
                    _commit(store, key, path, rows)
                    break
                except StoreError:  # vacuumed between upload and commit: upload again
                    retried += 1
            commits += 1
            missing = [k for k in _snapshot(store) if not store.exists(k)]
            violations.extend(f"after commit {i}: {k}" for k in missing)
    finally:
        done.set()
        gc.join()
    assert errors == [] and commits == 30 and removed, "the vacuum must have run against the commits"
    assert violations == []
    assert all(store.exists(k) for k in _snapshot(store))


def test_gc_command_prints_each_file_and_the_bytes_freed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from partitions.store import LocalStore

    data = tmp_path / "data"
    store = LocalStore(data / "store")
    (a, pa_, ra), (b, pb, rb) = _files(tmp_path, 2)
    _commit(store, a, pa_, ra)
    _commit(store, b, pb, rb)
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data)}

    def gc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "gc", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    r = gc("--dry-run", "--retention-hours", "0")
    assert r.returncode == 0, r.stderr
    size = pa_.stat().st_size
    assert f"would remove {a} ({size} bytes)" in r.stdout and f"would remove 1 files, {size} bytes" in r.stdout
    assert store.exists(a)
    r = gc()  # the default retention (24 h) keeps it
    assert r.returncode == 0 and "removed 0 files, 0 bytes" in r.stdout and store.exists(a)
    r = gc("--retention-hours", "0")
    assert f"removed {a} ({size} bytes)" in r.stdout and not store.exists(a) and store.exists(b)
    # It held the manifest's lock but made no manifest: an empty one would pass, at the next start,
    # for the whole manifest of this lake.
    assert not (data / "manifest.duckdb").exists()


def test_the_daemon_schedules_the_vacuum_and_it_honours_the_retention_setting(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from ingest.flows.registry import active_flows
    from ingest.runtime.app import build_app
    from ingest.runtime.daemon import Daemon
    from ingest.wiring.settings import load_settings
    from partitions import Manifest
    from partitions.store import LocalStore

    store = LocalStore(tmp_path / "store")
    (a, pa_, ra), (b, pb, rb) = _files(tmp_path, 2)
    _commit(store, a, pa_, ra)
    _commit(store, b, pb, rb)
    with Manifest(tmp_path / "m.duckdb") as manifest:
        def daemon(**settings: float) -> Daemon:
            s = load_settings(data_dir=tmp_path, token_key=SecretStr(Fernet.generate_key().decode()), **settings)
            return Daemon(build_app(s, manifest, store, {}, active_flows()))

        d = daemon(gc_interval_hours=2)
        d.start()
        try:
            job = d.scheduler.get_job("vacuum")
            assert job is not None and job.trigger.interval.total_seconds() == 2 * 3600
        finally:
            d.shutdown()
        daemon()._vacuum()  # the default retention, 24 h: the superseded file stays
        assert store.exists(a)
        daemon(gc_retention_hours=0)._vacuum()
        assert not store.exists(a) and _parquet(store) == _snapshot(store) == {b}
