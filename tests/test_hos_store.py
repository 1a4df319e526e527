"""Drivers and HOS datasets in the store: the drivers snapshot is one table per fleet replaced whole
by each pull, and a HOS month pulled whole replaces the committed month, also with nothing.

Through the real writer, Delta tables and manifest, on disk and on SeaweedFS (the `store` fixture).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.states import CommitStatus
from partitions import Manifest, MonthWriter, layout, read_month, read_snapshot
from partitions.delta import lake_for
from partitions.query import lake_connection
from partitions.rebuild import rebuild_raw
from partitions.schema import (
    ASSIGNMENT_CANDIDATE_SCHEMA,
    DRIVER_CANDIDATE_SCHEMA,
    HOS_LOG_CANDIDATE_SCHEMA,
    HOS_VIOLATION_CANDIDATE_SCHEMA,
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


def test_every_raw_dataset_is_one_the_store_knows_of(manifest: Manifest, tmp_path: Path) -> None:
    """layout.RAW_DATASETS lists every dataset with a schema, so what walks the raw tables by that
    list (a missing manifest over a store that holds only drivers data is lost state, not a new
    install) misses none of them."""
    from partitions.rebuild import lake_contents
    from partitions.schema import DATASET_SCHEMAS
    from partitions.store import LocalStore

    assert set(layout.RAW_DATASETS) == set(DATASET_SCHEMAS)
    store = LocalStore(tmp_path / "lake")
    assert lake_contents(store) is None
    pull_drivers(store, manifest, "fleet-a", [("d1", "Ann Lee")], ms(2026, 1, 20), tmp_path)
    assert lake_contents(store) == "the Delta table raw/drivers"


def hos_month(fleet: str, vehicle: str, driver: str, lo: int) -> dict[str, pa.Table]:
    hour = 3_600_000
    return {
        "assignments": pa.table({"fleet_id": [fleet], "vehicle_id": [vehicle], "driver_id": [driver],
                                 "start_ts": [lo], "end_ts": [lo + 30 * 24 * hour], "tsp_kind": ["HOS"],
                                 "source": ["samsara"], "raw": [None]}, schema=ASSIGNMENT_CANDIDATE_SCHEMA),
        "hos_logs": pa.table({"fleet_id": [fleet], "driver_id": [driver], "vehicle_id": [vehicle],
                              "start_ts": [lo + hour], "end_ts": [lo + 13 * hour], "status": ["driving"],
                              "tsp_status": ["driving"], "source": ["samsara"], "raw": [None]},
                             schema=HOS_LOG_CANDIDATE_SCHEMA),
        "hos_violations": pa.table({"fleet_id": [fleet], "driver_id": [driver], "ts": [lo + 12 * hour],
                                    "kind": ["driving_11"], "tsp_kind": ["shiftDrivingViolation"],
                                    "duration_s": [3600.0], "source": ["samsara"], "raw": [None]},
                                   schema=HOS_VIOLATION_CANDIDATE_SCHEMA),
    }


HOS = ("assignments", "hos_logs", "hos_violations")


def pull_hos(store: ObjectStore, manifest: Manifest, fleet: str, month: str, tables: dict[str, pa.Table],
             now_ms: int, tmp: Path) -> dict[str, tuple[CommitStatus, int]]:
    """What HosPull.pull_month does with a month pulled whole: every dataset declared replaced."""
    with MonthWriter(store, manifest, fleet, work_dir=tmp / "w", now_ms=now_ms) as w:
        for dataset in HOS:
            if dataset in tables:
                w.add_hos(dataset, tables[dataset])
            w.replace_month(dataset, month)
        return {r.dataset: (r.status, r.rows) for r in w.commit()}


def test_a_hos_month_re_pulled_with_no_records_left_becomes_empty(store: ObjectStore, manifest: Manifest,
                                                                  tmp_path: Path) -> None:
    now = ms(2025, 3, 10)
    first = pull_hos(store, manifest, "fleet-a", "2025-01", hos_month("fleet-a", "v1", "d1", ms(2025, 1, 5)),
                     now, tmp_path)
    assert first == dict.fromkeys(HOS, (CommitStatus.COMMITTED, 1))
    # Every record withdrawn or edited away: the month is replaced by nothing, in the manifest and the table.
    second = pull_hos(store, manifest, "fleet-a", "2025-01", {}, now + 86_400_000, tmp_path)
    assert second == dict.fromkeys(HOS, (CommitStatus.COMMITTED, 0))
    for dataset in HOS:
        part = manifest.raw_partition("fleet-a", dataset, "2025-01")
        assert part is not None and (part.rows, part.seq) == (0, 2), dataset
        assert read_month(store, manifest, "fleet-a", "2025-01", tmp_path / "c", dataset).num_rows == 0
        assert view(store, f"SELECT count(*) FROM {dataset} WHERE fleet = 'fleet-a'") == [(0,)]
    # Pulled empty again: nothing changes; a month that never held any gets no window at all.
    assert pull_hos(store, manifest, "fleet-a", "2025-01", {}, now, tmp_path) == dict.fromkeys(
        HOS, (CommitStatus.UNCHANGED, 0))
    assert pull_hos(store, manifest, "fleet-a", "2024-12", {}, now, tmp_path) == dict.fromkeys(
        HOS, (CommitStatus.UNCHANGED, 0))
    assert manifest.raw_partition("fleet-a", "hos_logs", "2024-12") is None


def test_a_month_emptied_of_hos_records_reruns_drivers_for_that_month(manifest: Manifest, tmp_path: Path) -> None:
    """drivers@1 of the emptied month runs again, on no assignments: the driving is unassigned."""
    from ingest.engine.executor import execute
    from ingest.engine.planner import plan
    from partitions.store import LocalStore
    from tests.support.flows import flow as builtin_flow
    from tests.support.pings import sim_table, simulator

    store = LocalStore(tmp_path / "lake")
    sim = simulator(vehicles=1)
    vid = sim.vehicles[0].vehicle_id
    now = ms(2025, 3, 10)
    with MonthWriter(store, manifest, "fleet-a", work_dir=tmp_path / "w", now_ms=now) as w:
        w.add(sim_table(sim, ["2025-02"]))
        w.commit()
    pull_hos(store, manifest, "fleet-a", "2025-02", hos_month("fleet-a", vid, "d1", ms(2025, 2, 1)), now, tmp_path)
    flows = [builtin_flow("drivers@1")]

    def run() -> list[tuple[str | None, int | None]]:
        runs = execute(manifest, plan(manifest, flows), flows, store.url, None, tmp_path / "c", now)
        assert [(r.flow, r.month, r.status) for r in runs] == [("drivers", "2025-02", "succeeded")], runs
        out = pa.concat_tables(pq.read_table(store.path(k)) for k in runs[0].outputs)
        return sorted(zip(out["driver_id"].to_pylist(), out["violations_driving_11"].to_pylist()),
                      key=lambda r: r[0] or "")

    before = run()
    assert ("d1", 1) in before, before
    pull_hos(store, manifest, "fleet-a", "2025-02", {}, now + 86_400_000, tmp_path)
    after = run()
    assert [d for d, _ in after] == [None], after


def test_the_drivers_snapshot_merged_in_memory_is_what_duckdb_merges(tmp_path: Path) -> None:
    """The snapshot's merge runs in memory when it fits (partitions.landing.merged): the same rows,
    hence the same fingerprint and file name, as the DuckDB merge that spills (writer._merge)."""
    from partitions import landing, writer
    from partitions.digest import digest_table
    from partitions.store import LocalStore

    rows = [("d2", "Bob"), ("d1", "Ann Lee"), ("d1", "Ann Lee"), ("d3", "Ñoño")]
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m, MonthWriter(store, m, "fleet-a", work_dir=tmp_path / "w",
                                                           now_ms=ms(2026, 1, 20)) as w:
        w.add_drivers(drivers("fleet-a", rows))
        spooled = [p for files in w._spooled.values() for p in files]
        duck = writer._merge([], spooled, tmp_path / "duck.parquet", "drivers", tmp_path, "1GB")
        assert digest_table(landing.merged("drivers", [], spooled)) == duck
        [result] = w.commit()
        [part] = m.raw_partitions("fleet-a", "drivers")
    assert result.fingerprint == duck.fingerprint == part.fingerprint and result.rows == 3
    assert part.files == (layout.raw_file("drivers", "fleet-a", "2026-01", duck.name),)
