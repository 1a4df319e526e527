"""data_quality's rules, vehicle by vehicle: gap counts give the exact medians, the gaps themselves the hours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.track import GAP_S, track_of


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
    # the fleet's gaps in row order: the very array, and so the very sum, a whole-month pass would give
    return Part(sum(q.pings for q in parts), dt, moving, np.concatenate([q.gap_dt for q in parts]),
                sum(q.jumps for q in parts), min(q.first_ts for q in parts), max(q.last_ts for q in parts))


def row(q: Part) -> dict[str, Any]:
    return {"pings": q.pings, "median_interval_s": q.intervals.median(),
            "moving_median_interval_s": q.moving_intervals.median(),
            "gap_hours": float(q.gap_dt.sum() / 3600.0), "gaps": int(q.gap_dt.size), "implausible_jumps": q.jumps,
            "first_ts": q.first_ts, "last_ts": q.last_ts}
