"""A speed estimate that checks the device's Doppler speed against its position change.

Doppler speed is the better measurement (0.3-1 mph of noise, where a 1 s position difference
carries a metre of fix jitter, about 2 mph), but now and then a receiver reports a speed far
off the truck's (multipath, a filter re-converging after a tunnel). Position change over the
two pairs around a ping is an independent, unbiased estimate of the speed there, so a Doppler
reading that disagrees with it by more than either could err, and with the neighbouring
readings in the same direction, is an outlier: it is replaced by the median of the position
estimate and the two neighbouring readings.

The tolerance grows with the window: over 2 s the two agree to a few mph, over 2 x 60 s a truck
can change speed on its own (a speeding episode of 70 s is one ping at 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.distance import consecutive_m
from ingest.signals.series import VehicleSeries

MPS_TO_MPH = 3600.0 / 1609.344
TOL_MPH = 6.0  # 1 s: position-change speed noise up to 1.3 mph (0.8 m white jitter per fix), Doppler under 1
TOL_PER_S = 0.05  # mph of tolerance per second of half-window: true speed changes within it
TOL_SHARE = 0.05  # chords cut bends: at 60 s (this share in full) the position estimate runs a few percent low
DENSE_HALF_S = 5.0
LAG_S = 1.0  # half a second each way between the instants of a fix and of its Doppler speed
WINDOW_MAX_S = 150.0  # neighbours further apart than this say nothing about the ping between them
NOISE_CRUISE_MPH = 30.0
NOISE_PAIR_S = 1.5
NOISE_MIN_PAIRS = 100
NOISE_FLOOR_MPH = 0.1  # the reporting resolution


@dataclass(frozen=True)
class FusedSpeed:
    mph: np.ndarray  # Doppler speed, outliers replaced; NaN (not sent) as 0
    outlier: np.ndarray  # bool per ping: the Doppler reading was replaced


def position_speed_mph(s: VehicleSeries) -> np.ndarray:
    """Speed from position change over the pairs before and after each ping (NaN at the ends)."""
    out = np.full(s.n, np.nan)
    if s.n < 3:
        return out
    chord = consecutive_m(s.lat, s.lon)
    dt = s.dt_s
    window = dt[:-1] + dt[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:-1] = np.where(window > 0, (chord[:-1] + chord[1:]) / window * MPS_TO_MPH, np.nan)
    return out


def fused_speed(s: VehicleSeries) -> FusedSpeed:
    sp = np.nan_to_num(s.speed_mph)
    outlier = np.zeros(s.n, bool)
    if s.n < 3:
        return FusedSpeed(sp, outlier)
    vpos = position_speed_mph(s)
    dt = s.dt_s
    half = (dt[:-1] + dt[1:]) / 2
    mid = sp[1:-1]
    # The position estimate is the mean speed over [t(i-1), t(i+1)], i.e. the speed at that
    # window's centre, which is not t(i) after a lost ping: compare the Doppler speed there.
    da, db = dt[:-1], dt[1:]
    shift = (db - da) / 2  # centre - t(i), seconds
    with np.errstate(divide="ignore", invalid="ignore"):
        at_centre = np.where(shift < 0, mid + (sp[:-2] - mid) * (-shift / np.where(da > 0, da, 1.0)),
                             mid + (sp[2:] - mid) * (shift / np.where(db > 0, db, 1.0)))
    # Fix and Doppler instants can differ by up to LAG_S: while the speed changes, the two
    # estimates differ by that much of the change. The slope comes from the position estimates
    # around i, which a Doppler outlier (or two in a row) does not move.
    slope = np.zeros(s.n - 2)
    if s.n > 4:
        with np.errstate(divide="ignore", invalid="ignore"):
            span = (s.ts_ms[3:-1] - s.ts_ms[1:-3]) / 1000.0
            slope[1:-1] = np.nan_to_num(np.abs(vpos[3:-1] - vpos[1:-3]) / np.where(span > 0, span, 1.0))
    tol = TOL_MPH + TOL_PER_S * half + TOL_SHARE * np.nan_to_num(vpos[1:-1]) * np.minimum(1.0, half / 60.0) + \
        LAG_S * slope
    near = (dt[:-1] <= WINDOW_MAX_S) & (dt[1:] <= WINDOW_MAX_S) & np.isfinite(vpos[1:-1]) & np.isfinite(s.speed_mph[1:-1])
    off = at_centre - vpos[1:-1]
    # Over a few seconds one neighbouring reading agreeing with the position suffices (so two
    # outliers in a row are both caught); over longer windows the truck may really have changed
    # speed, so both neighbours must agree.
    dense = half <= DENSE_HALF_S
    above_prev, above_next = mid - sp[:-2] > tol / 2, mid - sp[2:] > tol / 2
    below_prev, below_next = sp[:-2] - mid > tol / 2, sp[2:] - mid > tol / 2
    up = (off > tol) & np.where(dense, above_prev | above_next, above_prev & above_next)
    down = (off < -tol) & np.where(dense, below_prev | below_next, below_prev & below_next)
    outlier[1:-1] = near & (up | down)
    # The replacement: the median of the position estimate and the two neighbouring readings
    # (a slow truck's position estimate is the noisier of them; a neighbour may be an outlier too).
    out = sp.copy()
    k = np.flatnonzero(outlier)
    out[k] = np.maximum(np.median(np.stack([sp[k - 1], vpos[k], sp[k + 1]]), axis=0), 0.0)
    return FusedSpeed(out, outlier)


def noise_mph(speed_mph: np.ndarray, dt_s: np.ndarray) -> float | None:
    """The device's speed-difference noise: 1.4826 x MAD of 1 s differences while cruising.

    At a steady 30+ mph the true speed changes by hundredths of a mph per second, so the spread
    of the differences is the receiver's own; the median absolute deviation ignores the few
    real manoeuvres among them. None when there are too few such pairs to say.
    """
    dv = np.diff(speed_mph)
    steady = (dt_s > 0) & (dt_s <= NOISE_PAIR_S) & (speed_mph[:-1] >= NOISE_CRUISE_MPH) & (np.abs(dv) < 3.0)
    d = dv[steady]
    if d.size < NOISE_MIN_PAIRS:
        return None
    return max(1.4826 * float(np.median(np.abs(d - np.median(d)))), NOISE_FLOOR_MPH)
