"""harsh's detection and counts: harsh braking, acceleration and sharp turns that say where their
numbers come from.

Per kind and vehicle-month, in this order (docs/features.md, "harsh"):

1. TSP-reported events. Where the fleet-month has TSP safety events (raw/events), they are the
   count: the TSP's accelerometer sees what 1 s GPS speeds can only estimate. `source` says
   which TSP; every vehicle of such a fleet counts its TSP events (0 is then a real 0).
2. GPS-derived events, only where the vehicle-month's sampling supports them (`measurable`):
   braking and acceleration need a median driving interval of at most RATE_LIMIT_S, turns at
   most TURN_LIMIT_S (both picked from bench/accuracy.py, not taste). The rules are noise-aware:
   - a pair of pings is judged only when the pings are at most PAIR_MAX_S apart, so a pair
     stretched by a dropout is not read as one long hard manoeuvre;
   - its rate must clear the threshold by Z standard deviations of the vehicle-month's own
     speed-difference noise, estimated from steady cruising (a one-sided test: "this rate was
     above the threshold", not "a noisy reading touched it");
   - flagged pairs of one vehicle closer than MERGE_S are one event (noise can split a brake);
   - turns use the reported heading, or where there is none the bearing of a chord of at least
     CHORD_M, which GPS jitter barely turns; their window is TURN_WINDOW_S.
3. Otherwise null, `measurable = false`, and the reason. Never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.distance import haversine_m
from ingest.flows.base import FlowInput
from ingest.flows.harsh.schema import KINDS, SCHEMA
from ingest.flows.rollup import select
from ingest.flows.track import Track

TSP_KIND = {"harsh_brake": "harsh_brake", "harsh_accel": "harsh_accel", "harsh_turn": "sharp_turn"}
BRAKE_MPHPS = 7.0  # 0.32 g for a second: no routine or firm-but-ordinary truck stop (<= 6 mph/s) gets there
ACCEL_MPHPS = 4.0  # 0.18 g: twice a loaded truck's pull-away
MIN_MPH = 10.0  # manoeuvring in a yard is not harsh driving
PAIR_MAX_S = 1.5  # pairs judged for braking and acceleration (1 s cadence, 1 s of jitter tolerated... once)
RATE_LIMIT_S = 1.5  # median driving interval up to which braking and acceleration are measurable
Z = 2.0  # standard deviations of speed-difference noise the rate must clear the threshold by
NOISE_FLOOR_MPH = 0.1  # the reporting resolution: no device is quieter than this
MERGE_S = 4.0  # flagged pairs closer than this are one event
TURN_WINDOW_S = 12.0  # 10 s plus room for +-1 s jitter on 5 s pings: a turn between two pings 11 s apart counts
TURN_DEG = 40.0
TURN_MIN_MPH = 15.0
TURN_LIMIT_S = 10.0  # median driving interval up to which turns are measurable
CHORD_M = 25.0  # shortest chord whose bearing stands in for a missing heading
CHORD_MAX_S = 10.0

@dataclass(frozen=True)
class Detected:
    """GPS-derived events (parallel arrays) and, per vehicle and kind, whether it could be measured."""

    kind: np.ndarray  # index into KINDS
    row: np.ndarray  # the ping where the event starts
    ts_ms: np.ndarray
    magnitude: np.ndarray  # mph/s for brake/accel, degrees for turns
    measurable: np.ndarray  # [vehicle, kind] bool
    reason: list[list[str | None]]  # [vehicle][kind]


def noise_mph(tr: Track) -> np.ndarray:
    """Per vehicle: the std of the speed difference of consecutive pings while cruising
    (robust: 1.4826 x MAD), at whatever cadence the device reports.

    At a steady 30+ mph the true speed changes by hundredths of a mph per second, so what the
    differences spread is the device's own noise.
    """
    p = tr.pairs
    dv = np.diff(tr.speed)
    steady = p.same & (p.dt_s > 0) & (p.dt_s <= 10.0) & (tr.speed[:-1] >= 30) & (np.abs(dv) < 3.0)
    out = np.full(len(tr.vehicles), np.nan)
    owner = tr.pair_vehicle
    for v in range(len(tr.vehicles)):  # owner is sorted: a slice per vehicle, not a pass over all pairs
        sl = select(owner, v)
        d = dv[sl][steady[sl]]
        if d.size >= 100:
            out[v] = max(1.4826 * float(np.median(np.abs(d - np.median(d)))), NOISE_FLOOR_MPH)
    return out


def _rate_events(tr: Track, sign: float, threshold: float, noise: np.ndarray, pair_max_s: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    p = tr.pairs
    v0, v1, dt = tr.speed[:-1], tr.speed[1:], p.dt_s
    ok = p.same & (dt > 0) & (dt <= pair_max_s) & (np.maximum(v0, v1) >= MIN_MPH)
    sigma = noise[tr.pair_vehicle]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(ok, (v1 - v0) * sign / dt, 0.0)
        need = threshold + Z * sigma / dt
    return _merge(np.flatnonzero(ok & (rate >= need)), rate, tr)


def _merge(idx: np.ndarray, value: np.ndarray, tr: Track, at_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(row, peak value) of groups of flagged rows of one vehicle: consecutive pings, or closer than MERGE_S.

    The row is the group's first, or with at_last its last: a turn is flagged from every ping up
    to TURN_WINDOW_S before it, and the last of them is the one at the turn.
    """
    if idx.size == 0:
        return idx, np.empty(0)
    veh = tr.vehicle_index[idx]
    apart = (np.diff(idx) > 1) & (np.diff(tr.ts[idx]) > MERGE_S * 1000)
    new = np.concatenate([[True], (veh[1:] != veh[:-1]) | apart])
    group = np.cumsum(new) - 1
    peak = np.full(int(group[-1]) + 1, -np.inf)
    np.maximum.at(peak, group, value[idx])
    return (idx[np.concatenate([new[1:], [True]])] if at_last else idx[new]), peak


def heading(tr: Track) -> np.ndarray:
    """Reported heading; where missing, the bearing of the chord to the first fix CHORD_M away."""
    h = tr.heading.copy()
    missing = np.flatnonzero(~np.isfinite(h))
    if missing.size == 0 or tr.n < 2:
        return h
    cum = np.concatenate([[0.0], np.cumsum(haversine_m(tr.lat[:-1], tr.lon[:-1], tr.lat[1:], tr.lon[1:]))])
    target = np.searchsorted(cum, cum[missing] + CHORD_M)  # first fix at least CHORD_M along the track
    ok = target < tr.n
    j = np.minimum(target, tr.n - 1)
    ok &= (tr.vehicle_index[j] == tr.vehicle_index[missing]) & (tr.ts[j] - tr.ts[missing] <= CHORD_MAX_S * 1000)
    lat0, lon0 = np.radians(tr.lat[missing]), np.radians(tr.lon[missing])
    lat1, lon1 = np.radians(tr.lat[j]), np.radians(tr.lon[j])
    y = np.sin(lon1 - lon0) * np.cos(lat1)
    x = np.cos(lat0) * np.sin(lat1) - np.sin(lat0) * np.cos(lat1) * np.cos(lon1 - lon0)
    h[missing] = np.where(ok, np.degrees(np.arctan2(y, x)) % 360.0, np.nan)
    return h


def _turn_events(tr: Track) -> tuple[np.ndarray, np.ndarray]:
    n = tr.n
    hd = heading(tr)
    change = np.zeros(n)
    # Pings are sorted by vehicle and time, so a ping j whose k-th successor is out of the window
    # (or another vehicle's) has every later one out too: each step looks only at the j still in
    # it, and the cost follows the pairs in the window, not n times the window's length.
    j = np.arange(n)
    for k in range(1, int(TURN_WINDOW_S) + 1):
        if k >= n:
            break
        j = j[j < n - k]
        within = (tr.vehicle_index[j] == tr.vehicle_index[j + k]) & ((tr.ts[j + k] - tr.ts[j]) <= TURN_WINDOW_S * 1000)
        if not within.any():
            break
        j = j[within]
        fast = (tr.speed[j] >= TURN_MIN_MPH) & (tr.speed[j + k] >= TURN_MIN_MPH)
        d = np.abs((hd[j + k] - hd[j] + 180.0) % 360.0 - 180.0)
        d = np.where(fast & np.isfinite(d), d, 0.0)
        change[j] = np.maximum(change[j], d)
    return _merge(np.flatnonzero(change >= TURN_DEG), change, tr, at_last=True)


def _driving_interval_s(tr: Track) -> np.ndarray:
    """Per vehicle: the median seconds between consecutive pings while moving (inf if it never did)."""
    p = tr.pairs
    moving = p.same & (tr.speed[:-1] >= MIN_MPH) & (tr.speed[1:] >= MIN_MPH) & (p.dt_s <= 600)
    out = np.full(len(tr.vehicles), np.inf)
    owner = tr.pair_vehicle
    for v in range(len(tr.vehicles)):
        sl = select(owner, v)
        d = p.dt_s[sl][moving[sl]]
        if d.size:
            out[v] = float(np.median(d))
    return out


def detect(tr: Track, rate_limit_s: float = RATE_LIMIT_S, pair_max_s: float = PAIR_MAX_S) -> Detected:
    """GPS-derived events where measurable. The limits are parameters only so that
    bench/accuracy.py can show what the rule would report without them."""
    nv = len(tr.vehicles)
    measurable = np.zeros((nv, len(KINDS)), bool)
    reason: list[list[str | None]] = [[None] * len(KINDS) for _ in range(nv)]
    if tr.n < 2:
        e = np.empty(0, np.int64)
        return Detected(e, e, e, np.empty(0), measurable, [["no pings"] * len(KINDS) for _ in range(nv)])
    interval = _driving_interval_s(tr)
    noise = noise_mph(tr)
    for v in range(nv):
        for k, limit in enumerate((rate_limit_s, rate_limit_s, TURN_LIMIT_S)):
            if not np.isfinite(interval[v]):
                reason[v][k] = "no driving at 10 mph or more"
            elif interval[v] > limit:
                reason[v][k] = f"pings {interval[v]:g} s apart while driving; GPS needs {limit:g} s or less"
            elif k < 2 and not np.isfinite(noise[v]):
                reason[v][k] = "too little steady driving to estimate the speed noise"
            else:
                measurable[v, k] = True
    parts = [(0, *_rate_events(tr, -1.0, BRAKE_MPHPS, noise, pair_max_s)),
             (1, *_rate_events(tr, +1.0, ACCEL_MPHPS, noise, pair_max_s)),
             (2, *_turn_events(tr))]
    kind = np.concatenate([np.full(r.size, k) for k, r, _ in parts])
    row = np.concatenate([r for _, r, _ in parts]).astype(np.int64)
    mag = np.concatenate([m for _, _, m in parts])
    keep = measurable[tr.vehicle_index[row], kind] if row.size else np.empty(0, bool)
    return Detected(kind[keep], row[keep], tr.ts[row[keep]], mag[keep], measurable, reason)


def tsp_counts(events: pa.Table | None, vehicles: tuple[str, ...]) -> tuple[np.ndarray, str] | None:
    """[vehicle, kind] counts of TSP-reported events and the source label, or None without any."""
    if events is None or events.num_rows == 0:
        return None
    vid = pc.cast(events["vehicle_id"], pa.string()).to_pylist()
    kinds = pc.cast(events["kind"], pa.string()).to_pylist()
    sources = sorted(set(pc.cast(events["source"], pa.string()).to_pylist()))
    pos = {v: i for i, v in enumerate(vehicles)}
    counts = np.zeros((len(vehicles), len(KINDS)), np.int64)
    for v, k in zip(vid, kinds):
        if k in TSP_KIND:
            counts[pos[v], KINDS.index(TSP_KIND[k])] += 1
    return counts, "tsp:" + "+".join(sources)


def table(inp: FlowInput, vehicles: tuple[str, ...], miles: np.ndarray, counts: np.ndarray, ok: np.ndarray,
          reasons: list[list[str | None]], source: str) -> pa.Table:
    """Vehicle rows and the fleet row from per-vehicle miles and, per [vehicle, kind], counts,
    whether measurable and why not."""
    nv = len(vehicles)
    cols: dict[str, list] = {"fleet_id": [inp.fleet_id] * (nv + 1), "month": [inp.month] * (nv + 1),
                             "vehicle_id": [*vehicles, None], "miles": [*miles.tolist(), float(miles.sum())]}
    for k, name in enumerate(KINDS):
        fleet_ok = ok[:, k].any()
        fleet_count = int(counts[ok[:, k], k].sum()) if fleet_ok else None
        fleet_miles = float(miles[ok[:, k]].sum())
        kind_reasons = [r[k] for r in reasons]
        fleet_reason = None if ok[:, k].all() else (f"covers {int(ok[:, k].sum())} of {nv} vehicles" if fleet_ok
                                                    else next(r for r in kind_reasons if r))
        all_counts = [int(c) if o else None for c, o in zip(counts[:, k], ok[:, k])] + [fleet_count]
        all_miles = [*miles.tolist(), fleet_miles]
        cols[f"{name}s"] = all_counts
        cols[f"{name}s_per_1000_mi"] = [c / m * 1000 if c is not None and m >= 1.0 else None
                                        for c, m in zip(all_counts, all_miles)]
        cols[f"{name}_source"] = [source if o else None for o in ok[:, k]] + [source if fleet_ok else None]
        cols[f"{name}_measurable"] = [bool(o) for o in ok[:, k]] + [bool(fleet_ok)]
        cols[f"{name}_reason"] = [None if o else r for o, r in zip(ok[:, k], kind_reasons)] + [fleet_reason]
    cols["complete_month"] = [inp.complete] * (nv + 1)
    return pa.table(cols, schema=SCHEMA)
