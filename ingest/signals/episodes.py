"""Speeding episodes whose rules scale with the vehicle's sampling interval.

speed v2's episode (docs/features.md): starts at a ping over SPEEDING_MPH, continues through
pings at EXIT_MPH or more, bridges short dips, counts when it lasts MIN_S and its median reading
is over SPEEDING_MPH. Its fixed limits (consecutive pings at most 60 s apart, dips of at most
10 s) split an episode at 60 s sampling whenever one ping is lost. Here both scale:
- consecutive pings of an episode may be `sampling.allowed_gap_s(interval, 60 s)` apart;
- a dip is bridged when the pings at EXIT_MPH or more around it are at most
  `allowed_gap_s(interval, 10 s)` apart (one or two noisy readings at any rate);
- the duration is first to last ping plus one interval (each ping stands for one).
Speeds are the fused estimate (ingest/signals/speed.py): one wild Doppler reading on a sparse
track is not an episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.signals.sampling import allowed_gap_s, driving_interval_s
from ingest.signals.series import VehicleSeries
from ingest.signals.speed import FusedSpeed, fused_speed

SPEEDING_MPH = 75.0
EXIT_MPH = 74.0
MIN_S = 60.0
PAIR_FLOOR_S = 60.0
DIP_FLOOR_S = 10.0
IMPLAUSIBLE_MPH = 150.0


@dataclass(frozen=True)
class Episodes:
    first_ms: np.ndarray  # start of each episode
    seconds: np.ndarray  # its estimated length
    interval_s: float | None  # the sampling interval the gap rules used


def speeding(s: VehicleSeries, fused: FusedSpeed | None = None) -> Episodes:
    """`fused`: the series' fused speed when the caller has it already."""
    interval = driving_interval_s(s)
    sp = (fused or fused_speed(s)).mph
    idx = np.flatnonzero((sp >= EXIT_MPH) & (sp <= IMPLAUSIBLE_MPH))
    if idx.size == 0:
        return Episodes(np.empty(0, np.int64), np.empty(0), interval)
    pair_gap = allowed_gap_s(interval, PAIR_FLOOR_S)
    dip_gap = allowed_gap_s(interval, DIP_FLOOR_S)
    a, b = idx[:-1], idx[1:]
    gap = (s.ts_ms[b] - s.ts_ms[a]) / 1000.0
    linked = np.where(b == a + 1, gap <= pair_gap, gap <= dip_gap)
    new = np.concatenate([[True], ~linked])
    group = np.cumsum(new) - 1
    first = idx[new]
    last = idx[np.concatenate([new[1:], [True]])]
    over = np.bincount(group, weights=sp[idx] > SPEEDING_MPH) > np.bincount(group) / 2
    seconds = (s.ts_ms[last] - s.ts_ms[first]) / 1000.0 + (interval or 0.0)
    keep = over & (seconds >= MIN_S)
    return Episodes(s.ts_ms[first[keep]], seconds[keep], interval)
