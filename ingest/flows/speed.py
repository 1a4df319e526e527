"""speed v1: how fast a vehicle drives, and for how long above 65, 70 and 75 mph (docs/features.md)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns, select, vehicle_and_fleet_rows
from ingest.flows.track import COLUMNS, GAP_S, IMPLAUSIBLE_MPH, Track, quantile, track_of

LIMITS_MPH = (65, 70, 75)
SPEEDING_MPH = 75.0  # speeding episode: over 75 mph ...
SPEEDING_MIN_S = 60.0  # ... for 60 s or more
EPISODE_MAX_PAIR_S = 60.0  # pings further apart than this end an episode: we cannot know

SCHEMA = pa.schema([
    *key_columns(),
    ("moving_hours", pa.float64()), ("mean_moving_mph", pa.float64()), ("p95_mph", pa.float64()),
    ("max_mph", pa.float64()),
    *[(f"hours_over_{x}", pa.float64()) for x in LIMITS_MPH],
    ("speeding_episodes", pa.int64()), ("speeding_minutes", pa.float64()),
    ("complete_month", pa.bool_()),
])


def episodes(tr: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vehicle, first row, estimated seconds) of each speeding episode.

    An episode is a run of consecutive pings over SPEEDING_MPH, none more than
    EPISODE_MAX_PAIR_S apart. Its duration is first to last ping plus one sampling interval:
    the truth lies between (last - first) and (last - first + 2 intervals).
    """
    over = (tr.speed > SPEEDING_MPH) & (tr.speed <= IMPLAUSIBLE_MPH)
    p = tr.pairs
    linked = over[:-1] & over[1:] & p.same & (p.dt_s <= EPISODE_MAX_PAIR_S)
    idx = np.flatnonzero(over)
    if idx.size == 0:
        e = np.empty(0, np.int64)
        return e.astype(np.int32), e, np.empty(0)
    new = np.concatenate([[True], ~linked[idx[:-1]] | (idx[1:] != idx[:-1] + 1)])
    first = idx[new]
    last = idx[np.concatenate([new[1:], [True]])]
    seconds = (tr.ts[last] - tr.ts[first]) / 1000.0 + tr.moving_interval_s
    keep = seconds >= SPEEDING_MIN_S
    return tr.vehicle_index[first[keep]], first[keep], seconds[keep]


def compute(inp: FlowInput) -> pa.Table:
    return compute_with(inp, episodes)


def compute_with(inp: FlowInput, find_episodes: Callable[[Track], tuple[np.ndarray, np.ndarray, np.ndarray]],
                 loader: Callable[[FlowInput], Track] = track_of) -> pa.Table:
    """The speed table, with speeding episodes found by `find_episodes` on a track from `loader`
    (speed v2 changes those two)."""
    tr = loader(inp)
    if tr.n == 0:
        return SCHEMA.empty_table()
    p = tr.pairs
    v0, v1 = tr.speed[:-1], tr.speed[1:]
    # Time at speed comes from pairs moving at both ends and close in time; each end's speed
    # stands for half the pair.
    timed = p.same & (v0 > 0) & (v1 > 0) & (p.dt_s <= GAP_S) & (np.maximum(v0, v1) <= IMPLAUSIBLE_MPH)
    pair_owner = tr.pair_vehicle
    moving_ping = (tr.speed > 0) & (tr.speed <= IMPLAUSIBLE_MPH)
    ep_owner, _, ep_seconds = find_episodes(tr)

    def summarise(v: int | None) -> dict[str, object]:
        sl = select(pair_owner, v)
        t = timed[sl]
        dt, a, b = p.dt_s[sl][t], v0[sl][t], v1[sl][t]
        rows = select(tr.vehicle_index, v)
        speeds = tr.speed[rows][moving_ping[rows]]
        hours = float(dt.sum() / 3600.0)
        e = select(ep_owner, v)
        out: dict[str, object] = {
            "moving_hours": hours,
            "mean_moving_mph": float((dt * (a + b) / 2).sum() / dt.sum()) if dt.size else None,
            # At a steady driving cadence every moving ping stands for the same time.
            "p95_mph": quantile(speeds, 0.95), "max_mph": float(speeds.max()) if speeds.size else None,
            "speeding_episodes": int(ep_seconds[e].size), "speeding_minutes": float(ep_seconds[e].sum() / 60.0)}
        for x in LIMITS_MPH:
            share = ((a > x).astype(float) + (b > x)) / 2
            out[f"hours_over_{x}"] = float((dt * share).sum() / 3600.0)
        return out

    return vehicle_and_fleet_rows(inp, tr.vehicles, SCHEMA, summarise)


FLOW = Flow("speed", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
