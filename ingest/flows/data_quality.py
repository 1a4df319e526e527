"""data_quality v1: how much a vehicle-month of pings can be trusted (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.track import COLUMNS, GAP_S, load

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),
    ("vehicle_id", pa.string()),  # null: the fleet roll-up
    ("pings", pa.int64()), ("median_interval_s", pa.float64()), ("moving_median_interval_s", pa.float64()),
    ("gap_hours", pa.float64()), ("gaps", pa.int64()), ("implausible_jumps", pa.int64()),
    ("first_ts", pa.timestamp("ms", tz="UTC")), ("last_ts", pa.timestamp("ms", tz="UTC")),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    tr = load(inp.tables["pings"])
    if tr.n == 0:
        return SCHEMA.empty_table()
    p = tr.pairs
    jumps = p.moving & ~p.counted
    gaps = p.moving & (p.dt_s > GAP_S)
    rows = []
    groups = [(tr.vehicles[v], slice(int(a), int(b))) for v, (a, b) in enumerate(zip(tr.starts, tr.ends))]
    for vehicle_id, rows_sel in [*groups, (None, slice(0, tr.n))]:
        a, b = rows_sel.start, rows_sel.stop
        pair_sel = slice(a, max(a, b - 1))  # the pairs among these rows
        same = p.same[pair_sel]
        dt, moving = p.dt_s[pair_sel][same], p.moving[pair_sel][same]
        gap = gaps[pair_sel]
        rows.append({"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": vehicle_id, "pings": b - a,
                     "median_interval_s": float(np.median(dt)) if dt.size else None,
                     "moving_median_interval_s": float(np.median(dt[moving])) if moving.any() else None,
                     "gap_hours": float(p.dt_s[pair_sel][gap].sum() / 3600.0), "gaps": int(gap.sum()),
                     "implausible_jumps": int(jumps[pair_sel].sum()),
                     "first_ts": int(tr.ts[a:b].min()), "last_ts": int(tr.ts[a:b].max()),
                     "complete_month": inp.complete})
    return pa.Table.from_pylist(rows, SCHEMA)


FLOW = Flow("data_quality", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
