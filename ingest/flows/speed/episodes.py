"""Speeding episodes that a noisy ping does not split (docs/features.md, speed).

Reported speed carries an error of 0.3-1 mph (GNSS Doppler, correlated over seconds), so a
truck holding 76 mph reads 74.9 now and then, and "consecutive pings over 75" would cut one
episode into pieces too short to count. Hysteresis and a short dip allowance instead:

- an episode starts at a ping over SPEEDING_MPH (75) and continues through pings at EXIT_MPH
  (74) or more, consecutive pings at most EPISODE_MAX_PAIR_S (60 s) apart;
- dips below EXIT_MPH lasting at most MAX_DIP_S are bridged (one or two noisy pings at 1-5 s);
- it counts when it lasts SPEEDING_MIN_S (60 s) or more (first to last ping at 74+, plus one
  sampling interval) and its median reading is over 75: a truck holding 74 whose correlated
  speed error reads it half a mph high for a minute is not speeding.
"""

from __future__ import annotations

import numpy as np

from ingest.flows.track import IMPLAUSIBLE_MPH, Track

SPEEDING_MPH = 75.0  # speeding episode: over 75 mph ...
SPEEDING_MIN_S = 60.0  # ... for 60 s or more
EPISODE_MAX_PAIR_S = 60.0  # pings further apart than this end an episode: we cannot know
EXIT_MPH = 74.0
MAX_DIP_S = 10.0


def episodes(tr: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vehicle, first row, estimated seconds) of each speeding episode."""
    stay = (tr.speed >= EXIT_MPH) & (tr.speed <= IMPLAUSIBLE_MPH)
    idx = np.flatnonzero(stay)
    if idx.size == 0:
        e = np.empty(0, np.int64)
        return e.astype(np.int32), e, np.empty(0)
    a, b = idx[:-1], idx[1:]
    gap = (tr.ts[b] - tr.ts[a]) / 1000.0
    same = tr.vehicle_index[a] == tr.vehicle_index[b]
    linked = same & np.where(b == a + 1, gap <= EPISODE_MAX_PAIR_S, gap <= MAX_DIP_S)
    new = np.concatenate([[True], ~linked])
    group = np.cumsum(new) - 1
    first = idx[new]
    last = idx[np.concatenate([new[1:], [True]])]
    # median over 75 <=> more than half of the episode's pings read over 75
    over = np.bincount(group, weights=tr.speed[idx] > SPEEDING_MPH) > np.bincount(group) / 2
    seconds = (tr.ts[last] - tr.ts[first]) / 1000.0 + tr.moving_interval_s
    keep = over & (seconds >= SPEEDING_MIN_S)
    return tr.vehicle_index[first[keep]], first[keep], seconds[keep]
