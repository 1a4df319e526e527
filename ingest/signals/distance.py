"""Miles of one vehicle-month from the best source, and their apportioning to states.

GPS path length (`gps_pair_miles`), per pair of consecutive pings that moves:
- both ends moving and the pair no longer than the allowed gap (ingest/signals/sampling.py):
  the distance the fused speeds integrate to (trapezoid). Speed is the rate of path length, so
  its integral follows the road through bends that a 30-60 s chord cuts (about 1-2% of a
  winding road at 60 s), and Doppler noise averages out where fix jitter only adds length. It
  is used within [CHORD_FLOOR, CHORD_CEILING] x the chord (give or take FIX_SLACK_M of fix
  error; a tighter floor would turn speed noise into a bias): outside that the speeds at the ends
  do not describe the pair (a stop inside a 60 s pair, a speed the position contradicts);
- otherwise (a start or a stop inside the pair, a device-offline gap): the chord.

Odometer (`odometer_pair_miles`), where the device reports one:
- only the pings with a reading are anchors; each span between consecutive anchors is
  plausible when its reading grows by at least 0 and at most DETOUR x its GPS miles (plus two
  reading steps) and at most IMPLAUSIBLE_MPH over its time: a reset or a glitch breaks that;
- consecutive plausible spans form a stretch; a stretch with at least CHECK_MI of GPS miles is
  trusted only when its odometer miles are within BOUND of them (a miscalibrated or stuck
  odometer is not), shorter ones are trusted on plausibility alone;
- a trusted stretch's miles are its odometer miles, spread over its pairs in proportion to
  their GPS miles (the shape of the path, scaled to the odometer); every other pair (a reset, a
  glitch, a stretch that failed the bound) keeps its GPS miles: the break is bridged by GPS.

State miles: each pair's miles are split along the line between its fixes at the points where
that line crosses a state line (found by bisection to about a metre), not at a midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geo.distance import METERS_PER_MILE, consecutive_m
from geo.states import state_lookup
from ingest.signals.sampling import MOVING_MPH, allowed_gap_s, driving_interval_s
from ingest.signals.series import VehicleSeries
from ingest.signals.speed import FusedSpeed, fused_speed

IMPLAUSIBLE_MPH = 150.0  # a pair implying more than this is a GPS jump, not driving
CHORD_FLOOR = 0.97  # a path is never shorter than its chord (3% and FIX_SLACK_M for fix error)
FIX_SLACK_M = 10.0
CHORD_CEILING = 1.6  # roads wind, but a pair whose speeds claim more is not described by them
SPEED_GAP_FLOOR_S = 10.0  # the speed integral is used on pairs up to this long at least
DETOUR = 1.6  # an odometer span may exceed its GPS miles by this factor (roads inside a gap)
READING_STEP_MI = 0.125 / 1.609344  # J1939 SPN 245 counts 0.125 km per bit
CHECK_MI = 5.0
BOUND = 0.03  # odometer within 3% of GPS per stretch: drift and calibration are a fraction of a percent
PIECE_MI = 0.25  # a long pair is looked at every so often along its line for state lines
BISECT_STEPS = 12

SOURCES = ("odometer", "gps", "odometer+gps")


@dataclass(frozen=True)
class VehicleMiles:
    miles: float
    by_state: dict[str, float] = field(default_factory=dict)  # "--": outside every state
    source: str = "gps"  # odometer | gps | odometer+gps (each had miles) ; see SOURCES
    odometer_miles: float = 0.0  # the part counted from trusted odometer stretches
    gps_miles: float = 0.0  # the part counted from GPS


def gps_pair_miles(s: VehicleSeries, speed_mph: np.ndarray | None = None) -> np.ndarray:
    """GPS miles of each consecutive pair (0 where the pair does not move or jumps)."""
    if s.n < 2:
        return np.empty(0)
    sp = fused_speed(s).mph if speed_mph is None else speed_mph
    sp = np.where(sp < MOVING_MPH, 0.0, sp)
    chord = consecutive_m(s.lat, s.lon) / METERS_PER_MILE
    dt = s.dt_s
    v0, v1 = sp[:-1], sp[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        plausible = np.where(dt > 0, chord / (dt / 3600.0), np.inf) <= IMPLAUSIBLE_MPH
    moving = (np.maximum(v0, v1) > 0) & plausible
    gap = allowed_gap_s(driving_interval_s(s), SPEED_GAP_FLOOR_S)
    integral = dt * (v0 + v1) / 2 / 3600.0
    slack = FIX_SLACK_M / METERS_PER_MILE  # two fixes' error: a 1 s chord is no sharper a floor than that
    use = moving & (v0 > 0) & (v1 > 0) & (dt <= gap) & (integral >= CHORD_FLOOR * chord - slack) & \
        (integral <= CHORD_CEILING * chord + slack)
    return np.where(use, integral, np.where(moving, chord, 0.0))


def odometer_pair_miles(s: VehicleSeries, gps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(miles, trusted) per pair: odometer miles on trusted stretches, GPS miles elsewhere."""
    miles = gps.copy()
    trusted = np.zeros(gps.size, bool)
    anchor = np.flatnonzero(np.isfinite(s.odometer_mi))
    if anchor.size < 2:
        return miles, trusted
    a, b = anchor[:-1], anchor[1:]
    cum = np.concatenate([[0.0], np.cumsum(gps)])
    span_gps = cum[b] - cum[a]
    span_odo = s.odometer_mi[b] - s.odometer_mi[a]
    span_h = (s.ts_ms[b] - s.ts_ms[a]) / 3.6e6
    plausible = (span_odo >= 0) & (span_odo <= DETOUR * span_gps + 2 * READING_STEP_MI) & \
        (span_odo <= IMPLAUSIBLE_MPH * span_h + 2 * READING_STEP_MI)
    # stretches: runs of plausible spans
    start = plausible & np.concatenate([[True], ~plausible[:-1]])
    group = np.cumsum(start) - 1
    sel = np.flatnonzero(plausible)
    if sel.size == 0:
        return miles, trusted
    g = group[sel]
    n_groups = int(g.max()) + 1
    odo_sum = np.bincount(g, weights=span_odo[sel], minlength=n_groups)
    gps_sum = np.bincount(g, weights=span_gps[sel], minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gps_sum > 0, odo_sum / gps_sum, np.inf)
    ok_group = (gps_sum < CHECK_MI) | (np.abs(ratio - 1.0) <= BOUND)
    ok_group &= gps_sum > 0  # an odometer that moves while GPS stood still says nothing we can place
    # each pair belongs to the span that holds it: the anchors before and after it
    span_of_pair = np.searchsorted(a, np.arange(gps.size), side="right") - 1
    inside = (span_of_pair >= 0) & (span_of_pair < a.size)
    inside[inside] &= np.arange(gps.size)[inside] < b[span_of_pair[inside]]
    pair_span = np.where(inside, span_of_pair, 0)
    in_plausible = inside & plausible[pair_span]
    pair_group = group[pair_span]
    use = in_plausible & ok_group[np.where(in_plausible, pair_group, 0)]
    scale = np.where(gps_sum > 0, odo_sum / np.where(gps_sum > 0, gps_sum, 1.0), 0.0)
    miles[use] = gps[use] * scale[pair_group[use]]
    trusted[use] = True
    return miles, trusted


def state_split(s: VehicleSeries, pair_miles: np.ndarray) -> dict[str, float]:
    """Miles per state: each pair's miles split along its line at the state lines it crosses."""
    idx = np.flatnonzero(pair_miles > 0)
    if idx.size == 0:
        return {}
    lookup = state_lookup()
    codes = [*lookup.codes, "--"]
    chord = consecutive_m(s.lat, s.lon)[idx] / METERS_PER_MILE
    pieces = np.maximum(1, np.ceil(chord / PIECE_MI)).astype(np.int64)
    starts = np.cumsum(pieces) - pieces
    k = np.arange(int(pieces.sum())) - np.repeat(starts, pieces)
    owner = np.repeat(idx, pieces)
    f0 = k / np.repeat(pieces, pieces)
    f1 = (k + 1) / np.repeat(pieces, pieces)
    lat0, lon0 = s.lat[owner], s.lon[owner]
    dlat, dlon = s.lat[owner + 1] - lat0, s.lon[owner + 1] - lon0
    st0 = lookup.index_of(lat0 + dlat * f0, lon0 + dlon * f0)
    st1 = lookup.index_of(lat0 + dlat * f1, lon0 + dlon * f1)
    weight = pair_miles[owner] / np.repeat(pieces, pieces)
    n_codes = len(codes)
    sums = np.bincount(st0, weights=np.where(st0 == st1, weight, 0.0), minlength=n_codes)
    cross = np.flatnonzero(st0 != st1)
    if cross.size:
        lo, hi = f0[cross].copy(), f1[cross].copy()
        a, b = st0[cross], st1[cross]
        la, lo_, dla, dlo = lat0[cross], lon0[cross], dlat[cross], dlon[cross]
        for _ in range(BISECT_STEPS):
            mid = (lo + hi) / 2
            at = lookup.index_of(la + dla * mid, lo_ + dlo * mid)
            first = at == a
            lo = np.where(first, mid, lo)
            hi = np.where(first, hi, mid)
        share = ((lo + hi) / 2 - f0[cross]) / (f1[cross] - f0[cross])
        w = weight[cross]
        sums += np.bincount(a, weights=w * share, minlength=n_codes)
        sums += np.bincount(b, weights=w * (1 - share), minlength=n_codes)
    return {codes[i]: float(sums[i]) for i in np.flatnonzero(sums > 0)}


def vehicle_miles(s: VehicleSeries, fused: FusedSpeed | None = None) -> VehicleMiles:
    """`fused`: the series' fused speed when the caller has it already."""
    if s.n < 2:
        return VehicleMiles(0.0)
    gps = gps_pair_miles(s, None if fused is None else fused.mph)
    miles, trusted = odometer_pair_miles(s, gps)
    odo = float(miles[trusted].sum())
    rest = float(miles[~trusted].sum())
    source = "odometer+gps" if odo > 0 and rest > 0 else ("odometer" if odo > 0 else "gps")
    return VehicleMiles(odo + rest, state_split(s, miles), source, odo, rest)
