"""Which seconds of the 1 s track a device logs while the engine runs (docs/sandbox.md, "Sampling").

Two kinds of logger exist in fleets:
- time-based: every `interval_s` seconds (1 s on video-telematics units, 30-60 s on many
  trailer and basic trackers and in some TSP history endpoints);
- event-based ("curve" logging): a point when the heading has turned by `turn_deg` since the
  last one, every `distance_m` travelled, at every stop and start, and at least every
  `timeout_s` (Geotab's curve logging times out after 100 s). A straight highway at 65 mph is
  then one point every 34 s, a junction several points within seconds.

Event-based logging is written as thresholds crossed by cumulative quantities (distance,
absolute turning) rather than "since the last logged point", so it is vectorised; the spacing it
gives is the same to within one threshold step.
"""

from __future__ import annotations

import numpy as np

EVENT_TURN_DEG = 15.0
EVENT_DISTANCE_M = 1000.0
EVENT_TIMEOUT_S = 100
EVENT_MIN_MPH = 3.0  # heading is meaningless below this; turning is not counted


def time_based(ts_s: np.ndarray, on: np.ndarray, interval_s: int, phase: int) -> np.ndarray:
    return np.flatnonzero(on & ((ts_s - phase) % interval_s == 0))


def event_based(ts_s: np.ndarray, on: np.ndarray, speed_mph: np.ndarray, heading_deg: np.ndarray,
                step_m: np.ndarray, phase: int) -> np.ndarray:
    """Indices of the engine-on seconds an event-based logger keeps."""
    n = ts_s.size
    if n == 0:
        return np.empty(0, np.int64)
    dist = np.concatenate([[0.0], np.cumsum(step_m)])
    turn = np.abs((np.diff(heading_deg) + 180.0) % 360.0 - 180.0) * (speed_mph[1:] >= EVENT_MIN_MPH)
    turned = np.concatenate([[0.0], np.cumsum(turn)])
    moving = speed_mph > 0
    keep = np.zeros(n, bool)
    keep[1:] |= np.floor(dist[1:] / EVENT_DISTANCE_M) != np.floor(dist[:-1] / EVENT_DISTANCE_M)
    keep[1:] |= np.floor(turned[1:] / EVENT_TURN_DEG) != np.floor(turned[:-1] / EVENT_TURN_DEG)
    keep[1:] |= moving[1:] != moving[:-1]  # a stop or a start
    keep |= (ts_s - phase) % EVENT_TIMEOUT_S == 0
    keep[0] = True
    return np.flatnonzero(keep & on)
