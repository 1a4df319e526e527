"""One task per (fleet, month) runs every planned flow of that month over shared groundwork (issue 15).

The month is read once and its track, pair distances and time zones computed once; the outputs
must be byte for byte what each flow writes when it runs alone on its own read of the month, on
a month as messy as real ones (noise, jitter, dropouts, devices without heading). The manifest
still records one run per window, and a failure stays in its window.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.engine.executor import execute
from ingest.engine.planner import plan
from ingest.flows import walk
from ingest.flows.base import Flow, FlowInput
from ingest.flows.motion import load_moving
from ingest.flows.registry import active_flows, available
from ingest.flows.track import load
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.groundtruth import month_table
from sandbox.simulator import FleetSimulator, FleetSpec
from tests.support import flaky_flow
from tests.support.flows import flow as builtin_flow
from tests.test_writer import write

MONTHS = ["2025-02", "2025-03"]
NOW_MS = 1_900_000_000_000


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Two months of a 3-truck fleet at 5 s pings with 1 s jitter, noise, dropouts, devices without heading."""
    tmp = tmp_path_factory.mktemp("month-task")
    sim = FleetSimulator(FleetSpec("fleet-a", 23, 3, datetime(2025, 1, 1, tzinfo=timezone.utc), ping_interval_s=5,
                                   jitter_s=1, event_rate=3.0, no_heading_share=0.25))
    return sim, [month_table(sim, m) for m in MONTHS], tmp


def _land(messy, tmp: Path) -> tuple[LocalStore, Manifest]:
    _, tables, _ = messy
    store = LocalStore(tmp / "store")
    m = Manifest(tmp / "m.duckdb")
    write(store, m, tables, tmp)
    return store, m


def _alone(store: LocalStore, m: Manifest, flow: Flow, month: str, tmp: Path) -> bytes:
    """The window as the per-flow path wrote it: its own read (its columns), its own groundwork, one file.

    Its tracks are made the way flows made them before the month task (load, load_moving: no
    groundwork shared between them), so sharing the wrong thing in the month task shows here.
    """
    tables = {}
    for dataset in flow.inputs:
        part = m.raw_partition("fleet-a", dataset, month)
        if part is not None:
            tables[dataset] = pa.concat_tables(pq.read_table(store.path(k), columns=list(flow.columns) or None)
                                               for k in part.files)
    own: dict[str, object] = {"track": load(tables["pings"]), "moving_track": load_moving(tables["pings"])}
    out = walk.compute(flow, FlowInput("fleet-a", month, tables, True, own)).select(flow.schema.names).cast(flow.schema)
    path = tmp / f"alone-{flow.name}-{flow.version}-{month}.parquet"
    pq.write_table(out, path, compression="zstd")
    return path.read_bytes()


def test_one_pass_outputs_are_byte_identical_to_each_flow_run_alone(messy, tmp_path: Path) -> None:
    flows = [f for f in available().values() if not f.upstream and f.window == "month"]  # every month version on raw data
    assert {(f.name, f.version) for f in active_flows() if f.window == "month" and not f.upstream} <= {
        (f.name, f.version) for f in flows}
    store, m = _land(messy, tmp_path)
    with m:
        tasks = [t for t in plan(m, flows) if t.month == MONTHS[1]]  # one month keeps the suite quick
        results = execute(m, tasks, flows, store.url, None, tmp_path / "c", NOW_MS)
        assert len(results) == len(flows)
        assert all(r.status == "succeeded" for r in results), [r.error for r in results]
        by_key = {(f.name, f.version): f for f in flows}
        for r in results:
            flow = by_key[(r.flow, r.version)]
            committed = store.path(r.outputs[0]).read_bytes()
            # vehicles and the fleet row; drivers@1 without any assignment has only its unassigned row
            assert pq.read_table(store.path(r.outputs[0])).num_rows > (0 if r.flow == "drivers" else 1), r.window
            assert committed == _alone(store, m, flow, r.month, tmp_path), (r.flow, r.version,
                                                                                  r.month)
        # one run per window in the manifest, as before
        assert {(x.flow, x.version, x.month) for f in flows for x in m.runs(f.name) if x.status == "succeeded"} \
            == {(f.name, f.version, MONTHS[1]) for f in flows}


def test_a_failing_flow_fails_only_its_window_and_the_month_s_other_flows_commit(messy, tmp_path: Path) -> None:
    flows = [builtin_flow("distance@2"), flaky_flow.FLOW]  # flaky raises on fleet-a 2025-02 only
    store, m = _land(messy, tmp_path)
    with m:
        results = execute(m, plan(m, flows), flows, store.url, None, tmp_path / "c", NOW_MS)
        status = {(r.flow, r.month): r.status for r in results}
        assert status == {("distance", "2025-02"): "succeeded", ("flaky", "2025-02"): "failed",
                          ("distance", "2025-03"): "succeeded", ("flaky", "2025-03"): "succeeded"}
        failed = [r for r in results if r.status == "failed"][0]
        assert failed.error is not None and "ValueError" in failed.error and failed.outputs == ()
        assert [(t.flow, t.month) for t in plan(m, flows)] == [("flaky", "2025-02")]


def test_a_month_that_cannot_be_read_fails_each_of_its_windows_and_no_other(messy, tmp_path: Path) -> None:
    flows = [builtin_flow("distance@2"), flaky_flow.FLOW]
    store, m = _land(messy, tmp_path)
    with m:
        part = m.raw_partition("fleet-a", "pings", "2025-03")
        assert part is not None
        [key] = part.files
        store.path(key).write_bytes(b"not parquet")
        results = execute(m, plan(m, flows), flows, store.url, None, tmp_path / "c", NOW_MS)
        by = {(r.flow, r.month): r for r in results}
        assert {k for k, r in by.items() if r.status == "failed"} == {("distance", "2025-03"), ("flaky", "2025-03"),
                                                                    ("flaky", "2025-02")}
        assert by[("distance", "2025-02")].status == "succeeded"
        assert all(r.error and "Parquet" in r.error for k, r in by.items() if k[1] == "2025-03")
