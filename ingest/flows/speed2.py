"""speed v2: speed v1 with speeding episodes that a noisy ping does not split (docs/features.md).

Reported speed carries an error of 0.3-1 mph (GNSS Doppler, correlated over seconds), so a
truck holding 76 mph reads 74.9 now and then, and v1 ("consecutive pings over 75") cut one
episode into pieces too short to count. v2 uses hysteresis and a short dip allowance:

- an episode starts at a ping over SPEEDING_MPH (75) and continues through pings at EXIT_MPH
  (74) or more, consecutive pings at most EPISODE_MAX_PAIR_S (60 s) apart;
- dips below EXIT_MPH lasting at most MAX_DIP_S are bridged (one or two noisy pings at 1-5 s);
- it counts when it lasts SPEEDING_MIN_S (60 s) or more (first to last ping at 74+, plus one
  sampling interval) and its median reading is over 75: a truck holding 74 whose correlated
  speed error reads it half a mph high for a minute is not speeding.
Everything else (time above 65/70/75, mean, p95, max) is v1's, on speeds where idle drift is
not motion (ingest/flows/motion.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.motion import moving_track_of
from ingest.flows.speed import EPISODE_MAX_PAIR_S, SCHEMA, SPEEDING_MIN_S, SPEEDING_MPH, compute_with
from ingest.flows.track import COLUMNS, IMPLAUSIBLE_MPH, Track

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


def compute(inp: FlowInput) -> pa.Table:
    return compute_with(inp, episodes, moving_track_of)


FLOW = Flow("speed", 2, ("pings",), SCHEMA, compute, columns=COLUMNS)
