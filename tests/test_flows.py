"""Flow contract, planner and executor: exactly the windows that changed are run."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from common.errors import FlowError
from ingest.engine.executor import execute
from ingest.engine.fingerprint import closure_digests, code_fingerprint
from ingest.engine.planner import plan
from ingest.flows.base import Flow
from partitions import Manifest
from partitions.store import LocalStore
from tests.support.flows import flow
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

DQ = flow("data_quality@1")

NOW_MS = 1_900_000_000_000


def _land(store: LocalStore, m: Manifest, tmp: Path, fleet: str, months: list[str], seed: int = 2) -> None:
    write(store, m, [sim_table(simulator(vehicles=2, seed=seed), months, fleet_id=fleet)], tmp, fleet=fleet)


def _run(m: Manifest, store: LocalStore, tmp: Path, flows: list[Flow]):  # type: ignore[no-untyped-def]
    return execute(m, plan(m, flows), flows, store.url, None, tmp / "cache", NOW_MS, workers=2)


@pytest.fixture
def lake(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        _land(store, m, tmp_path, "fleet-a", ["2025-02", "2025-03"])
        _land(store, m, tmp_path, "fleet-b", ["2025-02", "2025-03"], seed=3)
        yield store, m, tmp_path


def test_first_run_covers_every_window_then_nothing_is_left(lake) -> None:
    store, m, tmp = lake
    results = _run(m, store, tmp, [DQ])
    assert sorted((r.fleet_id, r.month, r.status) for r in results) == [
        ("fleet-a", "2025-02", "succeeded"), ("fleet-a", "2025-03", "succeeded"),
        ("fleet-b", "2025-02", "succeeded"), ("fleet-b", "2025-03", "succeeded")]
    out = pq.read_table(store.path(results[0].outputs[0]))
    rows = out.to_pylist()
    assert [r["vehicle_id"] is None for r in rows] == [False, False, True]  # two vehicles, then the fleet
    assert rows[0]["pings"] > 1000 and rows[2]["pings"] == rows[0]["pings"] + rows[1]["pings"]
    assert results[0].outputs[0].startswith("features/data_quality/v1/fleet=fleet-a/month=2025-02/")
    assert plan(m, [DQ]) == []


def test_a_no_change_run_reads_no_parquet(lake) -> None:
    store, m, tmp = lake
    _run(m, store, tmp, [DQ])
    shutil.rmtree(store.root / "raw")  # planning must not need the data at all
    assert plan(m, [DQ]) == []


def test_new_month_and_late_data_rerun_exactly_their_windows(lake) -> None:
    store, m, tmp = lake
    _run(m, store, tmp, [DQ])
    _land(store, m, tmp, "fleet-a", ["2025-04"])
    assert [(t.fleet_id, t.month) for t in plan(m, [DQ])] == [("fleet-a", "2025-04")]
    _run(m, store, tmp, [DQ])
    late = sim_table(simulator(vehicles=3, seed=9), ["2025-02"], fleet_id="fleet-b").slice(0, 10)
    write(store, m, [late], tmp, fleet="fleet-b")
    assert [(t.fleet_id, t.month) for t in plan(m, [DQ])] == [("fleet-b", "2025-02")]
    # An identical re-ingest changes no fingerprint, so it reruns nothing.
    write(store, m, [late], tmp, fleet="fleet-b")
    _run(m, store, tmp, [DQ])
    write(store, m, [late], tmp, fleet="fleet-b")
    assert plan(m, [DQ]) == []


def test_a_new_version_runs_alongside_and_reruns_only_its_own_windows(lake) -> None:
    store, m, tmp = lake
    _run(m, store, tmp, [DQ])
    v2 = replace(DQ, version=2)
    tasks = plan(m, [DQ, v2])
    assert {(t.flow, t.version) for t in tasks} == {("data_quality", 2)} and len(tasks) == 4
    results = _run(m, store, tmp, [DQ, v2])
    assert all(r.outputs[0].startswith("features/data_quality/v2/") for r in results)


def test_schema_change_without_version_bump_is_refused(lake) -> None:
    _, m, _ = lake
    plan(m, [DQ])
    changed = replace(DQ, schema=DQ.schema.append(pa.field("extra", pa.int64())))
    with pytest.raises(FlowError, match="bump the version to v2"):
        plan(m, [changed])


def test_a_failing_window_is_recorded_and_retried_later_without_blocking_others(lake) -> None:
    store, m, tmp = lake
    from tests.support import flaky_flow

    results = _run(m, store, tmp, [flaky_flow.FLOW])
    by_fleet = {(r.fleet_id, r.month): r for r in results}
    assert by_fleet[("fleet-a", "2025-02")].status == "failed"
    assert "ValueError" in by_fleet[("fleet-a", "2025-02")].error
    assert sum(r.status == "succeeded" for r in results) == 3
    assert [(t.fleet_id, t.month) for t in plan(m, [flaky_flow.FLOW])] == [("fleet-a", "2025-02")]


def test_code_fingerprint_follows_the_code_the_flow_imports() -> None:
    fp = code_fingerprint("ingest.flows.data_quality")
    assert fp == code_fingerprint(DQ.module)
    assert code_fingerprint("ingest.flows.base") != fp
    closure = closure_digests("ingest.flows.data_quality")
    assert {"geo.distance", "ingest.flows.base"} <= set(closure) and "sandbox.simulator" not in closure
    assert not any(m.split(".")[0] in ("numpy", "pyarrow") for m in closure)  # third-party code is pinned, not hashed


def test_flows_read_committed_rows_sorted(lake) -> None:
    store, m, tmp = lake
    _run(m, store, tmp, [DQ])
    run = [r for r in m.runs("data_quality") if r.fleet_id == "fleet-a" and r.month == "2025-02"][0]
    t = pq.read_table(store.path(run.outputs[0]))
    assert pc.all(pc.greater(t["pings"], 0)).as_py() and t["complete_month"].to_pylist() == [True, True, True]
