"""Harsh braking and acceleration from 1 s speeds, or null with a reason (docs/features.md, "signals").

The rule, per vehicle-month:
1. Measurable only where the median driving interval is at most MAX_INTERVAL_S: at 2 s and
   beyond a pair's mean rate cannot tell a 1-3 s harsh brake from a firm ordinary stop
   (bench/accuracy.py of issue 12). Otherwise null, with the reason.
2. Speeds are the fused estimate (ingest/signals/speed.py): a Doppler outlier that position
   change contradicts is replaced, so a single wild reading is not a 15 mph "drop".
3. The rate is the speed change of consecutive pings at most PAIR_MAX_S apart, at MIN_MPH or
   more. It must reach the threshold plus Z of the device's own difference noise (robust,
   estimated from its cruising): Z is 1, not 2, because with outliers gone the noise left is
   the receiver's Gaussian-like error, and a firm ordinary stop peaks at 6 mph/s, a whole
   mph/s under the 7 mph/s braking threshold, i.e. 2-3 sigma for every device simulated.
4. Duration: the change must last. Neither the pair before the flagged one nor the pair after
   it undoes more than a quarter of it: a brake leaves the truck slower, while a single low
   reading is rebounded from, and a single high one falls back, at once.
5. Flagged pairs of one vehicle within MERGE_S are one event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.signals.sampling import MOVING_MPH, median_driving_interval_s
from ingest.signals.series import VehicleSeries
from ingest.signals.speed import FusedSpeed, fused_speed, noise_mph

BRAKE_MPHPS = 7.0  # 0.32 g: no routine or firm-but-ordinary truck stop (<= 6 mph/s) gets there
ACCEL_MPHPS = 4.0  # 0.18 g: twice a loaded truck's pull-away
MIN_MPH = 10.0  # manoeuvring in a yard is not harsh driving
PAIR_MAX_S = 1.5
MAX_INTERVAL_S = 1.5
Z = 1.0
DEFAULT_NOISE_MPH = 1.0  # too little cruising to measure the device: assume the noisiest receiver
MERGE_S = 4.0
REVERSAL = 0.25  # share of the change the neighbouring pairs may undo
NEIGHBOUR_S = 3.0


@dataclass(frozen=True)
class HarshEvents:
    brake_ms: np.ndarray  # time of each harsh brake (its first flagged pair)
    accel_ms: np.ndarray
    reason: str | None  # why braking and acceleration cannot be measured (then both arrays are empty)
    noise_mph: float | None  # the device's difference noise the threshold used
    interval_s: float | None


def _events(s: VehicleSeries, sp: np.ndarray, sign: float, threshold: float, sigma: float) -> np.ndarray:
    dt = s.dt_s
    dv = np.diff(sp) * sign
    ok = (dt > 0) & (dt <= PAIR_MAX_S) & (np.maximum(sp[:-1], sp[1:]) >= MIN_MPH)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(ok, dv / dt, 0.0)
    flagged = ok & (rate >= threshold + Z * sigma / np.where(dt > 0, dt, 1.0))
    idx = np.flatnonzero(flagged)
    # The change lasts: the pairs before and after it (pings within NEIGHBOUR_S) undo at most
    # REVERSAL of it. A low reading that the next one rebounds from, or a high one that falls
    # back, is undone at once; a brake leaves the truck slower.
    before, after = np.maximum(idx - 1, 0), np.minimum(idx + 2, s.n - 1)
    change = dv[idx]
    near_b = (idx > 0) & ((s.ts_ms[idx] - s.ts_ms[before]) <= 1000 * NEIGHBOUR_S)
    near_a = (idx + 2 < s.n) & ((s.ts_ms[after] - s.ts_ms[idx + 1]) <= 1000 * NEIGHBOUR_S)
    held = (~near_b | ((sp[idx] - sp[before]) * sign >= -REVERSAL * change)) & \
        (~near_a | ((sp[after] - sp[idx + 1]) * sign >= -REVERSAL * change))
    idx = idx[held]
    if idx.size == 0:
        return np.empty(0, np.int64)
    new = np.concatenate([[True], np.diff(s.ts_ms[idx]) > MERGE_S * 1000])
    return s.ts_ms[idx[new]]


def detect(s: VehicleSeries, fused: FusedSpeed | None = None) -> HarshEvents:
    """`fused`: the series' fused speed when the caller has it already."""
    e = np.empty(0, np.int64)
    interval = median_driving_interval_s(s)
    if interval is None:
        return HarshEvents(e, e, "no driving", None, None)
    if interval > MAX_INTERVAL_S:
        return HarshEvents(e, e, f"pings {interval:g} s apart while driving; braking and acceleration need "
                                 f"{MAX_INTERVAL_S:g} s or less", None, interval)
    mph = (fused or fused_speed(s)).mph
    sp = np.where(mph < MOVING_MPH, 0.0, mph)
    measured = noise_mph(sp, s.dt_s)
    sigma = measured if measured is not None else DEFAULT_NOISE_MPH
    return HarshEvents(_events(s, sp, -1.0, BRAKE_MPHPS, sigma), _events(s, sp, 1.0, ACCEL_MPHPS, sigma), None,
                       measured, interval)
