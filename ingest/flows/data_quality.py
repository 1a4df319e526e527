"""data_quality v1: how much a vehicle-month of pings can be trusted (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns, select, vehicle_and_fleet_rows
from ingest.flows.track import COLUMNS, GAP_S, track_of

SCHEMA = pa.schema([
    *key_columns(),
    ("pings", pa.int64()), ("median_interval_s", pa.float64()), ("moving_median_interval_s", pa.float64()),
    ("gap_hours", pa.float64()), ("gaps", pa.int64()), ("implausible_jumps", pa.int64()),
    ("first_ts", pa.timestamp("ms", tz="UTC")), ("last_ts", pa.timestamp("ms", tz="UTC")),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    tr = track_of(inp)
    if tr.n == 0:
        return SCHEMA.empty_table()
    p = tr.pairs
    jumps = p.moving & ~p.counted
    gaps = p.moving & (p.dt_s > GAP_S)

    def summarise(v: int | None) -> dict[str, object]:
        rows, pairs = select(tr.vehicle_index, v), select(tr.pair_vehicle, v)
        same = p.same[pairs]
        dt, moving, gap = p.dt_s[pairs][same], p.moving[pairs][same], gaps[pairs][same]
        ts = tr.ts[rows]
        return {"pings": int(ts.size),
                "median_interval_s": float(np.median(dt)) if dt.size else None,
                "moving_median_interval_s": float(np.median(dt[moving])) if moving.any() else None,
                "gap_hours": float(dt[gap].sum() / 3600.0), "gaps": int(gap.sum()),
                "implausible_jumps": int(jumps[pairs].sum()),
                "first_ts": int(ts.min()), "last_ts": int(ts.max())}

    return vehicle_and_fleet_rows(inp, tr.vehicles, SCHEMA, summarise)


FLOW = Flow("data_quality", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
