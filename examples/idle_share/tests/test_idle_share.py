"""idle_share on hand-built months whose answer is known, through the walk fleetlake runs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from idle_share import VERSIONS

from ingest.flows import walk
from ingest.flows.base import FlowInput

[FLOW] = VERSIONS
T0 = 1_736_150_400_000  # 2025-01-06T08:00Z


def _pings(vehicle: str, speeds: list[float], every_s: int = 5) -> pa.Table:
    n = len(speeds)
    return pa.table({"vehicle_id": [vehicle] * n, "ts": pa.array(T0 + np.arange(n) * every_s * 1000, pa.timestamp("ms", tz="UTC")),
                     "lat": 39.74 + np.cumsum(np.array(speeds) * every_s / 3600 / 69.0), "lon": np.full(n, -104.99),
                     "speed_mph": speeds, "heading_deg": np.zeros(n)})


def _rows(table: pa.Table) -> dict[str | None, dict]:
    out = walk.compute(FLOW, FlowInput("f", "2025-01", {"pings": table}, True))
    return {r["vehicle_id"]: r for r in out.to_pylist()}


def test_an_hour_driving_and_half_an_hour_idling_is_a_third_idle() -> None:
    speeds = [50.0] * 721 + [0.0] * 361  # 1 h at 50 mph, then 30 min standing, pinging every 5 s
    r = _rows(_pings("v1", speeds))["v1"]
    assert r["idle_hours"] == pytest.approx(0.5, abs=0.01)
    assert r["idle_share"] == pytest.approx(1 / 3, abs=0.01) and r["idle_share_reason"] is None


def test_a_parked_truck_that_stops_reporting_is_not_idling_and_the_fleet_adds_its_vehicles() -> None:
    parked = _pings("v2", [0.0, 0.0, 0.0], every_s=3600)  # hourly pings while parked: engine off
    rows = _rows(pa.concat_tables([_pings("v1", [50.0] * 721 + [0.0] * 361), parked]))
    assert rows["v2"]["idle_share"] is None and rows["v2"]["idle_share_reason"] == "no engine-on time in the month"
    assert rows[None]["idle_hours"] == pytest.approx(rows["v1"]["idle_hours"])
