"""The Delta commit of a window: one atomic log entry per month replacement, with our record in it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties

from partitions import Manifest, layout
from partitions.delta import WINDOW_KEY, lake_for
from partitions.store import ObjectStore
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

TABLE = layout.raw_table("pings")


def test_a_month_replacement_is_one_delta_commit_carrying_our_record(store: ObjectStore, tmp_path: Path) -> None:
    lake = lake_for(store)
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02", "2025-03"])], tmp_path)
        v1 = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options).version()
        write(store, m, [sim_table(simulator(seed=9), ["2025-03"])], tmp_path)  # late data for March
        march = m.raw_partition("fleet-a", "pings", "2025-03")
    dt = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options)
    assert dt.version() == v1 + 1  # one commit replaced March
    newest = dt.history(1)[0]
    assert json.loads(newest[WINDOW_KEY])["seq"] == 2 and newest["fleetlake.fingerprint"] == march.fingerprint
    live = lake.live_files(TABLE)
    assert [f.key for f in live[("fleet-a", "2025-03")]] == list(march.files)
    assert sum(f.rows for f in live[("fleet-a", "2025-03")]) == march.rows
    assert len(live) == 2  # February untouched
    rows = dt.to_pyarrow_table(filters=[("month", "=", "2025-03")]).num_rows
    assert rows == march.rows


def test_committing_the_live_files_again_is_a_no_op(store: ObjectStore, tmp_path: Path) -> None:
    """A rerun after a crash between the Delta commit and the manifest's record commits nothing."""
    lake = lake_for(store)
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
    version = lake.open(TABLE).version()
    files = lake.live_files(TABLE)[("fleet-a", "2025-02")]
    from partitions.schema import PING_SCHEMA

    assert lake.commit_window(TABLE, PING_SCHEMA, "fleet-a", "2025-02", files, {}) is False
    assert lake.open(TABLE).version() == version


def test_a_stale_writer_cannot_overwrite_a_committed_log_entry(store: ObjectStore, tmp_path: Path) -> None:
    """A writer on an old snapshot gets a conflict; the committed log entry stays. (Sequentially,
    delta-rs's existence check alone would catch this; under a real race only an atomic
    create-if-absent does: see the If-None-Match test below.)"""
    lake = lake_for(store)
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
        stale = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options)  # another writer's view
        write(store, m, [sim_table(simulator(seed=9), ["2025-02"])], tmp_path)
        winner = m.raw_partition("fleet-a", "pings", "2025-02")
    old = lake.live_files(TABLE)[("fleet-a", "2025-02")][0]
    add = AddAction(old.key[len(TABLE) + 1:], old.size, {"fleet": "fleet-a", "month": "2025-02"}, 0, True,
                    json.dumps({"numRecords": old.rows}))
    with pytest.raises(CommitFailedError):
        stale.create_write_transaction([add], mode="overwrite", schema=stale.schema(),
                                       partition_by=["fleet", "month"],
                                       partition_filters=[("fleet", "=", "fleet-a"), ("month", "=", "2025-02")],
                                       commit_properties=CommitProperties(custom_metadata={"stale": "yes"}))
    fresh = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options)
    assert "stale" not in fresh.history(1)[0]
    assert [f.key for f in lake_for(store).live_files(TABLE)[("fleet-a", "2025-02")]] == list(winner.files)
    assert pa.table(fresh.get_add_actions(flatten=True)).num_rows == 1


def test_tables_checkpoint_every_few_commits_and_keep_every_window_record(store: ObjectStore, tmp_path: Path) -> None:
    """A commit replays the log since the last checkpoint, so tables checkpoint often
    (CHECKPOINT_INTERVAL); the checkpoints expire no log entry, and each entry is a window's record."""
    from partitions.delta import CHECKPOINT_INTERVAL

    lake = lake_for(store)
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    assert len(months) > CHECKPOINT_INTERVAL
    with Manifest(tmp_path / "m.duckdb") as m:
        for month in months:
            write(store, m, [sim_table(simulator(vehicles=1, interval=60), [month])], tmp_path / month)
        parts = {p.month: p for p in m.raw_partitions("fleet-a", "pings")}
    version = lake.open(TABLE).version()
    last = json.loads(store.get(f"{TABLE}/_delta_log/_last_checkpoint"))["version"]
    assert 0 < version - CHECKPOINT_INTERVAL < last <= version
    assert store.exists(f"{TABLE}/_delta_log/{last:020d}.checkpoint.parquet")
    assert all(store.exists(f"{TABLE}/_delta_log/{v:020d}.json") for v in range(version + 1))
    newest, count = lake.window_commits(TABLE, WINDOW_KEY)
    assert count == len(months) and sorted(w[1] for w in newest) == months
    assert all(c.metadata["fingerprint"] == parts[w[1]].fingerprint for w, c in newest.items())


def test_seaweedfs_honours_if_none_match_which_our_s3_commits_rely_on(seaweed_s3: str) -> None:
    """delta-rs with conditional_put=etag writes each log entry with If-None-Match: *; a server
    that ignored it would let two writers both "create" the same version."""
    import uuid

    from botocore.exceptions import ClientError

    from tests.support.seaweed import BUCKET, s3_client

    c = s3_client(seaweed_s3)
    key = f"ifnonematch-{uuid.uuid4().hex}/00000000000000000001.json"
    c.put_object(Bucket=BUCKET, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfNoneMatch="*")
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert c.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"first"


def test_windows_committed_while_the_table_is_busy_share_one_transaction_and_each_keeps_its_record(
        store: ObjectStore, tmp_path: Path) -> None:
    """Fleets committing at once into the shared table: the thread that gets its lock commits every
    window waiting for it in one Delta transaction; each window is whole in it, and a rebuild reads
    each window's own record back from it."""
    import threading
    import time

    from partitions.rebuild import rebuild_raw

    lake = lake_for(store)
    march = sim_table(simulator(), ["2025-03"])
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path / "first")
        version = lake.open(TABLE).version()
        fleets = ("fleet-a", "fleet-b", "fleet-c")
        threads = [threading.Thread(target=write, args=(store, m, [march.set_column(
            0, "fleet_id", pa.array([f] * march.num_rows).dictionary_encode())], tmp_path / f, f)) for f in fleets]
        with lake.locked(TABLE):  # the table busy: the three commits queue behind it
            for t in threads:
                t.start()
            while len(lake._pending.get(TABLE, [])) < len(fleets):
                time.sleep(0.01)
        for t in threads:
            t.join()
        parts = {f: m.raw_partition(f, "pings", "2025-03") for f in fleets}
    dt = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options)
    assert dt.version() == version + 1  # one transaction for the three windows
    live = lake.live_files(TABLE)
    for f, part in parts.items():
        assert part is not None and [x.key for x in live[(f, "2025-03")]] == list(part.files)
    newest, _ = lake.window_commits(TABLE, WINDOW_KEY)
    assert {w: (c.version, c.metadata["fingerprint"]) for w, c in newest.items() if w[1] == "2025-03"} == \
        {(f, "2025-03"): (version + 1, p.fingerprint) for f, p in parts.items() if p is not None}
    with Manifest(tmp_path / "rebuilt.duckdb") as rebuilt:
        rebuild_raw(store, rebuilt)
        assert {f: rebuilt.raw_partition(f, "pings", "2025-03") for f in fleets} == parts


def test_the_live_files_a_lake_keeps_from_its_commits_are_the_snapshots(store: ObjectStore, tmp_path: Path) -> None:
    """A Lake plans its next group commit on the live files its last one left (not re-read from
    the snapshot, an O(table) cost per commit): after partial commits that append and the
    compaction that replaces, for two fleets, they are what a fresh reader of the log finds."""
    from partitions import MonthWriter
    from partitions.delta import _live

    lake = lake_for(store)
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"], fleet_id="fleet-b")], tmp_path / "b", "fleet-b")
        rows = sim_table(simulator(), ["2025-03"])
        step = -(-rows.num_rows // 3)
        with MonthWriter(store, m, "fleet-a", work_dir=tmp_path / "a", now_ms=1_800_000_000_000) as w:
            for complete in ((), (), ("2025-03",)):
                w.add(rows.slice(0, step))
                rows = rows.slice(step)
                w.commit(complete=complete)
                fresh = DeltaTable(lake.uri(TABLE), storage_options=lake.storage_options)
                version, kept = lake._kept[TABLE]
                assert version == fresh.version() and kept == _live(fresh, TABLE)
                assert ("fleet-b", "2025-02") in kept and ("fleet-a", "2025-03") in kept
    assert len(kept[("fleet-a", "2025-03")]) == 1  # the last commit compacted the month's parts


def test_a_window_another_writer_changed_is_read_again_before_this_lake_commits_it(
        store: ObjectStore, tmp_path: Path) -> None:
    """The live files a Lake keeps are used only while its own commit is the log's newest entry:
    another writer's commit since (here: one that emptied February) is read, not overwritten blind."""
    from partitions.delta import Lake
    from partitions.schema import PING_SCHEMA

    lake = lake_for(store)
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02", "2025-03"])], tmp_path)
    feb = lake.live_files(TABLE)[("fleet-a", "2025-02")]
    assert TABLE in lake._kept  # what the next commit would plan on
    assert Lake(store).commit_window(TABLE, PING_SCHEMA, "fleet-a", "2025-02", [], {}) is True
    assert ("fleet-a", "2025-02") not in lake.live_files(TABLE)
    # Planned on the kept files, February would still hold `feb`: a no-op, and February left empty.
    assert lake.commit_window(TABLE, PING_SCHEMA, "fleet-a", "2025-02", feb, {}) is True
    assert lake.live_files(TABLE)[("fleet-a", "2025-02")] == feb
