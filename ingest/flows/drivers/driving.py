"""drivers@1's driving time: the seconds a vehicle moved, as the crews' truth counts them.

The truth (sandbox/simulator.py, `Stretch`) counts every second the vehicle is moving at all,
start and stop ramps included. The fleet flows call speeds under 2 mph standing (motion.py),
which drops those ramps: 0.1-1.8% of a driver's hours. This rule keeps the ramps without
counting an idling truck's speed drift (0.1-1.5 mph while it stands, docs/sandbox.md) as
driving:

- a ping is moving at 2 mph or more; under 2 mph only at RAMP_FLOOR_MPH or more (any speed the
  device reports: 0.1 mph is its resolution) and within RAMP_S of a ping of the same vehicle at
  2 mph or more: the start and stop ramps and crawling around real driving, where speed noise
  (0.3-1 mph) dips readings under 2 mph or to 0 now and then. Drift at a long stop is cut off
  after RAMP_S, so a standing truck adds at most that much per stop;
- a pair with both ends moving and no gap (GAP_S) counts whole; one end moving, half of one
  sampling interval (the fleet-month's median interval while moving), as the track's rule;
- across a gap with either end moving (an offline device, often stopping or starting inside
  it): the straight-line distance at the mean of the two speeds (at least 1 mph), at most the
  gap. The track's rule estimates only gaps with both ends moving, losing driving whose far end
  is a stop.
"""

from __future__ import annotations

import numpy as np

from geo.distance import METERS_PER_MILE, haversine_m
from ingest.flows.motion import MOVING_MPH
from ingest.flows.track import GAP_S, Track

RAMP_FLOOR_MPH = 0.1  # the device's resolution: a reading of 0 is standing
# Measured on the realistic sandbox (12 trucks, idle drift on none and on all): 10 s loses up to
# 0.5% of a truck's hours, 20 s 0.4%, 30 s 0.3%; 60 s starts to count drift (+0.5%).
RAMP_S = 30.0


def ramp_speeds(tr: Track) -> np.ndarray:
    """The track's speeds with 0 wherever the vehicle is not moving by the rule above."""
    sp, t = tr.speed, tr.ts / 1000.0
    n = sp.size
    fast = sp >= MOVING_MPH
    low = (sp >= RAMP_FLOOR_MPH) & ~fast
    veh = tr.vehicle_index
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(fast, idx, -1))
    nxt = np.minimum.accumulate(np.where(fast, idx, n)[::-1])[::-1]
    p, q = np.maximum(prev, 0), np.minimum(nxt, n - 1)
    after = (prev >= 0) & (veh[p] == veh) & (t - t[p] <= RAMP_S)
    before = (nxt < n) & (veh[q] == veh) & (t[q] - t <= RAMP_S)
    return np.where(fast | (low & (after | before)), sp, 0.0)


def driving_s(tr: Track, moving_interval_s: float) -> np.ndarray:
    """Seconds of driving within each pair of consecutive pings (0 across vehicles)."""
    if tr.n < 2:
        return np.zeros(max(tr.n - 1, 0))
    sp = ramp_speeds(tr)
    same, dt = tr.pairs.same, tr.pairs.dt_s
    v0, v1 = sp[:-1], sp[1:]
    a, b = same & (v0 > 0), same & (v1 > 0)
    ok = dt <= GAP_S
    out = np.where(a & b & ok, dt, 0.0)
    out = np.where((a ^ b) & ok, np.minimum(dt, moving_interval_s) / 2.0, out)
    gap = np.flatnonzero((a | b) & ~ok)
    if gap.size:
        lat, lon = tr.lat, tr.lon
        miles = haversine_m(lat[gap], lon[gap], lat[gap + 1], lon[gap + 1]) / METERS_PER_MILE
        est = miles / np.maximum((v0[gap] + v1[gap]) / 2.0, 1.0) * 3600.0
        out[gap] = np.minimum(dt[gap], est)
    return out
