"""The DuckDB manifest: migrations, single writer, conflicts, validated and parameterized input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from common import names
from common.errors import CommitConflict, InvalidName, ManifestLocked, SchemaVersionError
from common.states import RunStatus
from partitions.manifest import MIGRATIONS, SCHEMA_VERSION, FlowRun, Manifest, RawPartition


def part(seq: int, month: str = "2025-01") -> RawPartition:
    return RawPartition("fleet-a", "pings", month, seq, (f"raw/pings/fleet=fleet-a/month={month}/p{seq}.parquet",),
                        10 * seq, 100, f"fp{seq}", datetime(2026, 1, 1, tzinfo=timezone.utc), "pull-1")


def test_migrations_run_once_and_reopen_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with Manifest(path) as m:
        m.commit_raw(part(1))
    with Manifest(path) as m:
        assert m.conn.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (SCHEMA_VERSION, len(MIGRATIONS))
        assert m.raw_partition("fleet-a", "pings", "2025-01") == part(1)


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with Manifest(path) as m:
        m.conn.execute("INSERT INTO schema_version VALUES (?, NULL)", [SCHEMA_VERSION + 1])
    with pytest.raises(SchemaVersionError, match="upgrade fleetlake"):
        Manifest(path)
    c = duckdb.connect(str(path))
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 1
    c.close()


def test_a_second_writer_process_is_told_who_holds_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from partitions.manifest import Manifest
        m = Manifest({str(path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ManifestLocked, match=f"pid {holder.pid}"):
            Manifest(path)
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait(timeout=20)
    with Manifest(path) as m:  # free again once the holder is gone
        assert m.raw_partitions() == []


def test_commits_must_follow_the_committed_version(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        m.commit_raw(part(1))
        with pytest.raises(CommitConflict, match="does not follow"):
            m.commit_raw(part(3))
        with pytest.raises(CommitConflict):
            m.commit_raw(part(1))
        m.commit_raw(part(2))
        assert m.raw_partition("fleet-a", "pings", "2025-01").seq == 2


def test_windows_recorded_together_each_follow_their_version_or_none_is_recorded(tmp_path: Path) -> None:
    """A writer's commit records all its windows in one transaction (Manifest.commit_raws): each
    must follow its own committed version, and one that does not leaves every window as it was."""
    def other(seq: int, month: str = "2025-01") -> RawPartition:
        return RawPartition("fleet-a", "events", month, seq, (f"raw/events/fleet=fleet-a/month={month}/e{seq}.parquet",),
                            seq, 10, f"ev{seq}", datetime(2026, 1, 1, tzinfo=timezone.utc), "pull-1")

    with Manifest(tmp_path / "m.duckdb") as m:
        m.commit_raws([part(1), part(1, "2025-02"), other(1)])
        m.commit_raws([part(2), other(2)])
        with pytest.raises(CommitConflict, match="events fleet-a 2025-01: commit 4 does not follow committed version 2"):
            m.commit_raws([part(3), part(2, "2025-02"), other(4)])
        assert m.raw_windows("fleet-a", ["2025-01", "2025-02"]) == {
            ("pings", "2025-01"): part(2), ("pings", "2025-02"): part(1, "2025-02"), ("events", "2025-01"): other(2)}
        assert m.raw_windows("fleet-a", ["2025-02"]) == {("pings", "2025-02"): part(1, "2025-02")}
        assert m.raw_windows("fleet-b", ["2025-01"]) == {}
        with pytest.raises(ValueError, match="twice"):
            m.commit_raws([part(3), part(3)])


def test_checkpoints_and_fleets(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        m.complete_slice("fleet-a", "samsara/gps", "2025-01-01/v1", "pings", 10)
        m.complete_slice("fleet-a", "samsara/gps", "2025-01-02/v1", "pings", 12)
        assert m.completed_slices("fleet-a", "samsara/gps") == {"2025-01-01/v1", "2025-01-02/v1"}
        # a commit's slices in one statement; a key given twice or already there is replaced
        m.record_slices("fleet-a", [("samsara/gps", "2025-01-02/v1", "pings", 13, True, None),
                                    ("samsara/gps", "2025-01-03/v1", "pings", 9, True, None),
                                    ("samsara/events", "fleet/1", "events", 2, True, None),
                                    ("samsara/gps", "2025-01-03/v1", "pings", 11, True, None),
                                    ("samsara/gps", "2025-01-04/v1", "pings", 5, False, None)])  # in its lookback
        assert m.completed_slices("fleet-a", "samsara/gps") == {"2025-01-01/v1", "2025-01-02/v1", "2025-01-03/v1"}
        assert m.completed_slices("fleet-a", "samsara/events") == {"fleet/1"}
        # a lookback slice keeps its pages' digests until it completes (or is read again without them)
        digests = "SELECT count(*) FROM lookback_pages WHERE fleet_id = 'fleet-a'"
        m.record_slices("fleet-a", [("samsara/gps", "2025-01-05/v1", "pings", 3, False, "d1"),
                                    ("samsara/gps", "2025-01-06/v1", "pings", 4, False, "d2")])
        assert m.conn.execute(digests).fetchone() == (2,)
        m.record_slices("fleet-a", [("samsara/gps", "2025-01-05/v1", "pings", 3, True, None),
                                    ("samsara/gps", "2025-01-06/v1", "pings", 4, False, None)])
        assert m.conn.execute(digests).fetchone() == (0,)
        assert "2025-01-05/v1" in m.completed_slices("fleet-a", "samsara/gps")
        assert "2025-01-06/v1" not in m.completed_slices("fleet-a", "samsara/gps")
        start = datetime(2024, 1, 1, tzinfo=timezone.utc)
        m.upsert_fleet("fleet-a", "samsara", "consented", history_start=start)
        m.upsert_fleet("fleet-a", "samsara", "active")
        f = m.fleet("fleet-a")
        assert f.status == "active" and f.history_start == start


@pytest.mark.parametrize("hostile", ["../fleet-b", "a/b", "x'; DROP TABLE fleets; --", "", "a" * 64, "fleet b"])
def test_hostile_fleet_ids_never_become_keys_or_sql(tmp_path: Path, hostile: str) -> None:
    with pytest.raises(InvalidName):
        names.fleet_id(hostile)
    with Manifest(tmp_path / "m.duckdb") as m:
        with pytest.raises(InvalidName):
            m.upsert_fleet(hostile, "samsara", "consented")
        assert m.raw_partition(hostile, "pings", "2025-01") is None  # parameterized lookups are inert
        assert m.conn.execute("SELECT count(*) FROM fleets").fetchone()[0] == 0


@pytest.mark.parametrize("bad", ["2025-13", "2025-1", "25-01", "2025-01/../x", "1900-01"])
def test_months_are_validated(bad: str) -> None:
    with pytest.raises(InvalidName):
        names.month(bad)


def test_a_manifest_is_created_aside_and_renamed_into_place(tmp_path: Path) -> None:
    # What a process killed while creating the manifest leaves behind: a partial file aside.
    (tmp_path / "m.duckdb.new-99999").write_bytes(b"DUCK half a header")
    with Manifest(tmp_path / "m.duckdb") as m:
        assert m.raw_partitions() == []
    assert not list(tmp_path.glob("m.duckdb.new-*"))
    with Manifest(tmp_path / "m.duckdb") as m:  # and the renamed file is a complete manifest
        assert m.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def _speed_run(run_id: str, fleet: str, month: str, input_fp: str, status: RunStatus, outputs: list[str],
               error: str | None, at: datetime) -> FlowRun:
    return FlowRun(run_id, "speed", 1, "c", fleet, month, input_fp, status, tuple(outputs), None, error, at, at)


def test_latest_runs_keeps_the_newest_run_of_each_window(tmp_path: Path) -> None:
    t = [datetime(2025, 1, 1, h, tzinfo=timezone.utc) for h in range(4)]
    with Manifest(tmp_path / "m.duckdb") as m:
        m.record_run(_speed_run("r1", "a", "2025-01", "i", RunStatus.FAILED, [], "boom", t[0]))
        m.record_run(_speed_run("r2", "a", "2025-01", "i", RunStatus.SUCCEEDED, ["o2"], None, t[1]))
        m.record_run(_speed_run("r3", "a", "2025-02", "i", RunStatus.SUCCEEDED, ["o3"], None, t[1]))
        m.record_run(_speed_run("r4", "a", "2025-02", "j", RunStatus.FAILED, [], "late data broke it", t[2]))
        m.record_run(_speed_run("r5", "b", "2025-01", "i", RunStatus.SUCCEEDED, ["o5"], None, t[3]))
        assert [(r.run_id, r.status) for r in m.latest_runs("a")] == [("r2", "succeeded"), ("r4", "failed")]
        assert [r.run_id for r in m.latest_runs("a", succeeded_only=True)] == ["r2", "r3"]
        assert [r.run_id for r in m.latest_runs()] == ["r2", "r4", "r5"]


def test_a_version_6_manifest_migrates_its_checkpoints_to_slice_keys_with_their_dataset(tmp_path: Path) -> None:
    """Migration 7: pull checkpoints name their dataset and key their slices as slices (not windows)."""
    path = tmp_path / "m.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)")
    for version, sql in MIGRATIONS[:6]:
        conn.execute(sql)
        conn.execute("INSERT INTO schema_version VALUES (?, NULL)", [version])
    conn.execute("INSERT INTO pull_checkpoints VALUES ('fleet-a', 'samsara/gps/604800000', 'v1/0', now(), 10, NULL), "
                 "('fleet-a', 'samsara/events/2419200000', 'fleet/0', now(), 2, NULL)")
    conn.close()
    with Manifest(path) as m:
        rows = m._all("SELECT stream, slice_key, dataset, rows FROM pull_checkpoints ORDER BY rows")
        assert rows == [("samsara/events/2419200000", "fleet/0", "events", 2),
                        ("samsara/gps/604800000", "v1/0", "pings", 10)]
        assert m.completed_slices("fleet-a", "samsara/gps/604800000") == {"v1/0"}
