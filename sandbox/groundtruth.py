"""Ground truth per (vehicle, UTC month), as Arrow tables for tests and benchmarks."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from sandbox.simulator import EVENT_KINDS, FleetSimulator, month_bounds_ms

TRUTH_SCHEMA = pa.schema([
    ("fleet_id", pa.string()),
    ("vehicle_id", pa.string()),
    ("month", pa.string()),
    ("pings", pa.int64()),
    ("miles", pa.float64()),
    ("driving_hours", pa.float64()),
    ("max_from_home_mi", pa.float64()),
    # p90 over the day blocks with driving of each day's farthest point from home
    ("p90_daily_max_from_home_mi", pa.float64()),
    *[(k, pa.int64()) for k in EVENT_KINDS],
])

STATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()),
    ("vehicle_id", pa.string()),
    ("month", pa.string()),
    ("state", pa.string()),  # two-letter code, "--" outside every state
    ("miles", pa.float64()),
])


def ground_truth(sim: FleetSimulator, months: list[str]) -> tuple[pa.Table, pa.Table]:
    """(per vehicle-month truth, per vehicle-month-state miles) for the given 'YYYY-MM' months."""
    rows: list[dict[str, object]] = []
    state_rows: list[dict[str, object]] = []
    fid = sim.spec.fleet_id
    for month in months:
        lo, hi = month_bounds_ms(month)
        for v in sim.vehicles:
            miles = 0.0
            driving = 0
            far = 0.0
            daily: list[float] = []
            states: dict[str, float] = defaultdict(float)
            counts = dict.fromkeys(EVENT_KINDS, 0)
            for track in sim.day_tracks(v, lo, hi):
                t = track.truth
                miles += t.miles.get(month, 0.0)
                driving += t.driving_s.get(month, 0)
                far = max(far, t.max_from_home_mi.get(month, 0.0))
                if t.driving_s.get(month, 0) > 0:
                    daily.append(t.max_from_home_mi[month])
                for s, m in t.miles_by_state.get(month, {}).items():
                    states[s] += m
                for e in t.events:
                    if lo <= e.ts_ms < hi:
                        counts[e.kind] += 1
            rows.append({"fleet_id": fid, "vehicle_id": v.vehicle_id, "month": month,
                         "pings": len(sim.pings(v, lo, hi)), "miles": miles, "driving_hours": driving / 3600,
                         "max_from_home_mi": far,
                         "p90_daily_max_from_home_mi": float(np.quantile(daily, 0.9)) if daily else None,
                         **counts})
            state_rows.extend({"fleet_id": fid, "vehicle_id": v.vehicle_id, "month": month, "state": s, "miles": m}
                              for s, m in sorted(states.items()))
    return pa.Table.from_pylist(rows, TRUTH_SCHEMA), pa.Table.from_pylist(state_rows, STATE_SCHEMA)
