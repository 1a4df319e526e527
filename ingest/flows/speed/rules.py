"""speed's rules, vehicle by vehicle (docs/features.md), on speeds where idle drift is not motion
(ingest/flows/motion.py):

- time at speed comes from pairs moving at both ends, at most GAP_S apart; hours and the mean
  are sums of per-vehicle sums;
- p95_mph, for vehicles and the fleet alike, is the 95th percentile of the moving pings' speeds
  on a 0.01 mph grid (well under the 0.1 mph TSPs report), kept as counts of each grid value;
- speeding episodes are episodes.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.motion import moving_track_of
from ingest.flows.speed.episodes import episodes
from ingest.flows.speed.schema import LIMITS_MPH
from ingest.flows.track import GAP_S, IMPLAUSIBLE_MPH

GRID_PER_MPH = 100  # speeds kept as counts on a 0.01 mph grid


@dataclass(frozen=True)
class Part:
    timed_pairs: int
    timed_s: float  # seconds of the pairs that time speed
    mph_s: float  # their speed x seconds
    over_s: tuple[float, ...]  # their seconds over each of LIMITS_MPH
    speeds: walk.Counts  # moving pings' speeds on the grid
    max_mph: float | None
    episode_s: np.ndarray  # seconds of each speeding episode


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = moving_track_of(inp)
    p = tr.pairs
    v0, v1 = tr.speed[:-1], tr.speed[1:]
    # Time at speed comes from pairs moving at both ends and close in time; each end's speed
    # stands for half the pair.
    timed = (v0 > 0) & (v1 > 0) & (p.dt_s <= GAP_S) & (np.maximum(v0, v1) <= IMPLAUSIBLE_MPH)
    dt, a, b = p.dt_s[timed], v0[timed], v1[timed]
    speeds = tr.speed[(tr.speed > 0) & (tr.speed <= IMPLAUSIBLE_MPH)]
    grid = walk.Counts(GRID_PER_MPH)
    grid.add(np.round(speeds * GRID_PER_MPH).astype(np.int64))
    over = tuple(float((dt * (((a > x).astype(float) + (b > x)) / 2)).sum()) for x in LIMITS_MPH)
    return Part(int(dt.size), float(dt.sum()), float((dt * (a + b) / 2).sum()), over, grid,
                float(speeds.max()) if speeds.size else None, episodes(tr)[2])


def merge(parts: list[Part]) -> Part:
    grid = walk.Counts(GRID_PER_MPH)
    grid.merge(q.speeds for q in parts)
    maxes = [q.max_mph for q in parts if q.max_mph is not None]
    return Part(sum(q.timed_pairs for q in parts), walk.total(q.timed_s for q in parts),
                walk.total(q.mph_s for q in parts),
                tuple(walk.total(q.over_s[i] for q in parts) for i in range(len(LIMITS_MPH))), grid,
                max(maxes) if maxes else None, np.concatenate([q.episode_s for q in parts]))


def row(p: Part) -> dict[str, Any]:
    out: dict[str, Any] = {
        "moving_hours": p.timed_s / 3600.0,
        "mean_moving_mph": p.mph_s / p.timed_s if p.timed_pairs and p.timed_s > 0 else None,
        # At a steady driving cadence every moving ping stands for the same time.
        "p95_mph": p.speeds.quantile(0.95), "max_mph": p.max_mph,
        "speeding_episodes": int(p.episode_s.size), "speeding_minutes": float(p.episode_s.sum() / 60.0)}
    for x, s in zip(LIMITS_MPH, p.over_s):
        out[f"hours_over_{x}"] = s / 3600.0
    return out
