"""Drivers and HOS datasets in the store: the drivers snapshot is one table per fleet replaced whole
by each pull, and a HOS month pulled whole replaces the committed month, also with nothing.

Through the real writer, Delta tables and manifest, on disk and on SeaweedFS (the `store` fixture).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from common.states import CommitStatus
from partitions import Manifest, MonthWriter, layout, read_snapshot
from partitions.delta import lake_for
from partitions.query import lake_connection
from partitions.rebuild import rebuild_raw
from partitions.schema import (
    DRIVER_CANDIDATE_SCHEMA,
)
from partitions.store import ObjectStore


def ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=timezone.utc).timestamp() * 1000)


def drivers(fleet: str, rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"fleet_id": [fleet] * len(rows), "driver_id": [d for d, _ in rows], "name": [n for _, n in rows],
                     "source": ["samsara"] * len(rows)}, schema=DRIVER_CANDIDATE_SCHEMA)


def pull_drivers(store: ObjectStore, manifest: Manifest, fleet: str, rows: list[tuple[str, str]], now_ms: int,
                 tmp: Path) -> list:
    with MonthWriter(store, manifest, fleet, work_dir=tmp / "w", now_ms=now_ms) as w:
        w.add_drivers(drivers(fleet, rows))
        return w.commit()


def view(store: ObjectStore, sql: str) -> list[tuple]:
    return lake_connection(store, [layout.raw_table(d) for d in layout.RAW_DATASETS]).execute(sql).fetchall()


@pytest.fixture
def manifest(tmp_path: Path):
    with Manifest(tmp_path / "manifest.duckdb") as m:
        yield m


def test_the_drivers_snapshot_is_one_table_per_fleet_replaced_whole_by_each_pull(
        store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    jan, feb, mar = ms(2026, 1, 20), ms(2026, 2, 3), ms(2026, 3, 9)
    pull_drivers(store, manifest, "fleet-a", [("d1", "Ann Lee"), ("d2", "Bob Gone")], jan, tmp_path)
    pull_drivers(store, manifest, "fleet-b", [("d9", "Cy Kept")], jan, tmp_path)
    # A month later the TSP no longer lists Bob: the snapshot is replaced, the January one is gone.
    [r] = pull_drivers(store, manifest, "fleet-a", [("d1", "Ann Lee")], feb, tmp_path)
    assert (r.month, r.status, r.rows, r.seq) == ("2026-02", CommitStatus.COMMITTED, 1, 2)
    assert [(p.month, p.seq) for p in manifest.raw_partitions("fleet-a", "drivers")] == [("2026-02", 2)]
    live = lake_for(store).live_files(layout.raw_table("drivers"))
    assert sorted(live) == [("fleet-a", "2026-02"), ("fleet-b", "2026-01")], "one window per fleet in the table"
    sql = "SELECT fleet, month, driver_id, name FROM drivers ORDER BY ALL"
    assert view(store, sql) == [("fleet-a", "2026-02", "d1", "Ann Lee"), ("fleet-b", "2026-01", "d9", "Cy Kept")]
    assert read_snapshot(store, manifest, "fleet-a", tmp_path / "c")["name"].to_pylist() == ["Ann Lee"]

    # The same drivers again: nothing to write, the snapshot stands under the month it was taken in.
    [same] = pull_drivers(store, manifest, "fleet-a", [("d1", "Ann Lee")], mar, tmp_path)
    assert (same.status, same.month) == (CommitStatus.UNCHANGED, "2026-02")

    # A rebuilt manifest knows the one snapshot per fleet, not the windows it replaced.
    with Manifest(tmp_path / "rebuilt.duckdb") as fresh:
        report = rebuild_raw(store, fresh)
        assert report.problems == ()
        assert [(p.fleet_id, p.month, p.seq) for p in fresh.raw_partitions(dataset="drivers")] == [
            ("fleet-a", "2026-02", 2), ("fleet-b", "2026-01", 1)]

    # No driver listed any more: the snapshot is replaced by an empty one, no name is left to read.
    [gone] = pull_drivers(store, manifest, "fleet-a", [], mar, tmp_path)
    assert (gone.status, gone.rows, gone.month) == (CommitStatus.COMMITTED, 0, "2026-03")
    assert view(store, sql) == [("fleet-b", "2026-01", "d9", "Cy Kept")]
    assert read_snapshot(store, manifest, "fleet-a", tmp_path / "c").num_rows == 0
