"""data_quality v1: how much a vehicle-month of pings can be trusted (docs/features.md).

It runs vehicle by vehicle (ingest/flows/walk.py); `compute_whole` is the same version over a
month held whole, which the walk reproduces byte for byte (tests/test_walk.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ingest.flows import walk
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


def compute_whole(inp: FlowInput) -> pa.Table:
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


@dataclass(frozen=True)
class Part:
    """One vehicle's numbers, or the fleet's: gap counts give the exact medians, the gaps themselves (few) the hours."""
    pings: int
    intervals: walk.Counts
    moving_intervals: walk.Counts
    gap_dt: np.ndarray
    jumps: int
    first_ts: int
    last_ts: int


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = track_of(inp)
    p = tr.pairs
    gaps_ms = np.diff(tr.ts)
    dt_counts, moving_counts = walk.gap_counts(), walk.gap_counts()
    dt_counts.add(gaps_ms)
    moving_counts.add(gaps_ms[p.moving])
    gap = p.moving & (p.dt_s > GAP_S)
    return Part(tr.n, dt_counts, moving_counts, p.dt_s[gap], int((p.moving & ~p.counted).sum()),
                int(tr.ts.min()), int(tr.ts.max()))


def merge(parts: list[Part]) -> Part:
    dt, moving = walk.gap_counts(), walk.gap_counts()
    dt.merge(q.intervals for q in parts)
    moving.merge(q.moving_intervals for q in parts)
    # the fleet's gaps in row order: the very array, and so the very sum, of the whole-month code
    return Part(sum(q.pings for q in parts), dt, moving, np.concatenate([q.gap_dt for q in parts]),
                sum(q.jumps for q in parts), min(q.first_ts for q in parts), max(q.last_ts for q in parts))


def row(q: Part) -> dict[str, Any]:
    return {"pings": q.pings, "median_interval_s": q.intervals.median(),
            "moving_median_interval_s": q.moving_intervals.median(),
            "gap_hours": float(q.gap_dt.sum() / 3600.0), "gaps": int(q.gap_dt.size), "implausible_jumps": q.jumps,
            "first_ts": q.first_ts, "last_ts": q.last_ts}


def compute(inp: FlowInput) -> pa.Table:
    return walk.compute(FLOW, inp)


FLOW = Flow("data_quality", 1, ("pings",), SCHEMA, compute, columns=COLUMNS, walk=walk.parts_walk(part, merge, row))
