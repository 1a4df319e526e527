"""Features against the simulator's ground truth (issue 5's acceptance thresholds)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.sandbox.groundtruth import ground_truth
from connectors.sandbox.simulator import FleetSimulator, FleetSpec
from ingest.executor import execute
from ingest.flows.distance import FLOW as DISTANCE
from ingest.planner import plan
from partitions import Manifest
from partitions.store import LocalStore
from tests.pings import sim_table
from tests.test_writer import write

MONTH = "2025-03"


@pytest.mark.parametrize("interval", [1, 5])
def test_miles_and_miles_per_state_match_the_ground_truth(tmp_path: Path, interval: int) -> None:
    sim = FleetSimulator(FleetSpec("fleet-a", 31, 6, datetime(2025, 1, 1, tzinfo=timezone.utc),
                                   ping_interval_s=interval))
    truth, truth_states = ground_truth(sim, [MONTH])
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(sim, [MONTH])], tmp_path)
        [result] = execute(m, plan(m, [DISTANCE]), [DISTANCE], store.url, None, tmp_path / "c", 1_900_000_000_000)
    assert result.status == "succeeded", result.error
    out = pq.read_table(store.path(result.outputs[0])).to_pylist()
    miles: dict[str, float] = defaultdict(float)
    states: dict[tuple[str, str], float] = {}
    for r in out:
        miles[r["vehicle_id"]] += r["miles"]
        states[(r["vehicle_id"], r["state"])] = r["miles"]
    checked = 0
    for t in truth.to_pylist():
        if t["miles"] < 50:
            continue  # a truck that barely moved says nothing about accuracy
        assert miles[t["vehicle_id"]] == pytest.approx(t["miles"], rel=0.01), t["vehicle_id"]
        checked += 1
    assert checked >= 4
    big = [s for s in truth_states.to_pylist() if s["miles"] > 10]
    for s in big:
        assert states.get((s["vehicle_id"], s["state"]), 0.0) == pytest.approx(s["miles"], rel=0.02), s
    assert len({s["state"] for s in big}) >= 3
    assert pa.Table.from_pylist(out).num_rows >= len(big)
