"""How often a vehicle reports while driving, and how long a silence is still "one lost ping".

A fleet's devices log every 1 s, 5 s, 30 s or 60 s, or on events (a heading change, a distance,
a stop, a timeout). Rules about consecutive pings (an episode goes on, a trip goes on) must
scale with that: at 60 s one lost ping is a 120 s silence, at 1 s it is 2 s.

The vehicle's interval is the p90 of its driving intervals, not the median: for a time-based
logger they are the same (1-2% of pings lost move neither), while an event-based logger pings
densely in town and sparsely on a straight highway, and the highway spacing is the one a
lost-ping rule must tolerate.
"""

from __future__ import annotations

import numpy as np

from ingest.signals.series import VehicleSeries

MOVING_MPH = 2.0  # below this a receiver's idle drift, not the truck, is moving (ingest/flows/motion.py)
SILENCE_S = 600.0  # a silence longer than this is a gap, whatever the interval (ingest/flows/track.GAP_S)
LOST_PINGS = 2.5  # pings this many intervals apart are still consecutive: one lost ping, plus jitter
QUANTILE = 0.9


def driving_interval_s(s: VehicleSeries) -> float | None:
    """The p90 of seconds between consecutive pings that both move (None: it never drove)."""
    if s.n < 2:
        return None
    dt = s.dt_s
    sp = np.nan_to_num(s.speed_mph)
    moving = (sp[:-1] >= MOVING_MPH) & (sp[1:] >= MOVING_MPH) & (dt > 0) & (dt <= SILENCE_S)
    if not moving.any():
        return None
    return float(np.quantile(dt[moving], QUANTILE))


def median_driving_interval_s(s: VehicleSeries) -> float | None:
    """The median of the same intervals: what a rule needing dense pings (harsh) asks about."""
    if s.n < 2:
        return None
    dt = s.dt_s
    sp = np.nan_to_num(s.speed_mph)
    moving = (sp[:-1] >= MOVING_MPH) & (sp[1:] >= MOVING_MPH) & (dt > 0) & (dt <= SILENCE_S)
    return float(np.median(dt[moving])) if moving.any() else None


def allowed_gap_s(interval_s: float | None, floor_s: float) -> float:
    """Longest silence between two pings of one episode: LOST_PINGS intervals, at least floor_s."""
    if interval_s is None:
        return floor_s
    return float(min(max(floor_s, LOST_PINGS * interval_s), SILENCE_S))
