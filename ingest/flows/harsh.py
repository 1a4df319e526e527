"""harsh v1: harsh braking, harsh acceleration and sharp turns from consecutive pings.

Speed and acceleration events are judged per pair of consecutive pings, turns over a short
window of pings; both only where pings are close in time and the truck is at speed. The rules
account for the ping interval (docs/features.md, "harsh v1"):

- A pair's mean rate of speed change must reach `harsh / dt`: one second at the harsh rate
  inside the pair and nothing elsewhere would give that much. At 1 s pings this is the harsh
  rate itself.
- It must also exceed the routine maximum: over longer intervals `harsh / dt` falls below what
  a truck does in any firm but ordinary stop, and such pairs must not count.

Between those two bounds lies what sparse pings cannot see: a 1 s brake at the end of a 5 s
interval loses about as much speed as a routine stop over the whole interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.track import COLUMNS, Track, track_of

MAX_PAIR_S = 10.0  # wider pairs say too little about what happened between them
MIN_MPH = 10.0  # manoeuvring in a yard is not harsh driving
BRAKE_MPHPS = 5.0  # harsh braking: 5 mph/s (0.23 g) for at least a second
ACCEL_MPHPS = 4.0  # harsh acceleration: 4 mph/s (0.18 g); a loaded truck rarely manages more
ROUTINE_BRAKE_MPHPS = 1.5  # the most a heavy truck decelerates in routine driving (0.07 g)
ROUTINE_ACCEL_MPHPS = 1.0
ROUTINE_MARGIN = 0.05  # speeds are reported to 0.1 mph: 0.02 mph/s over 5 s, plus headroom
# Severe: a mean rate over the pair that only a hard, sustained manoeuvre reaches.
SEVERE_BRAKE_MEAN_MPHPS = 3.0
SEVERE_ACCEL_MEAN_MPHPS = 2.5
TURN_WINDOW_S = 10.0
TURN_DEG = 40.0  # heading change within TURN_WINDOW_S
SEVERE_TURN_DEG = 70.0
TURN_MIN_MPH = 15.0
KINDS = ("harsh_brake", "harsh_accel", "sharp_turn")

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),
    ("vehicle_id", pa.string()),  # null: the fleet roll-up
    ("miles", pa.float64()),
    *[(f"{k}{s}", t) for k in KINDS
      for s, t in (("s", pa.int64()), ("s_severe", pa.int64()), ("s_per_1000_mi", pa.float64()))],
    ("complete_month", pa.bool_()),
])


@dataclass(frozen=True)
class HarshEvents:
    """Detected events: parallel arrays, sorted by (kind, row)."""

    kind: np.ndarray  # index into KINDS
    row: np.ndarray  # the ping where the event starts
    ts_ms: np.ndarray
    magnitude: np.ndarray  # estimated peak mph/s, or degrees for turns
    severe: np.ndarray


def _rate_events(tr: Track, sign: float, harsh: float, routine: float) -> tuple[np.ndarray, np.ndarray]:
    """(first pair, peak mean rate) of each run of consecutive pairs whose speed change is harsh."""
    p = tr.pairs
    v0, v1, dt = tr.speed[:-1], tr.speed[1:], p.dt_s
    ok = p.same & (dt > 0) & (dt <= MAX_PAIR_S) & (np.maximum(v0, v1) >= MIN_MPH)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(ok, (v1 - v0) * sign / dt, 0.0)
        need = np.maximum(harsh / dt, routine + ROUTINE_MARGIN)
    return _runs(ok & (rate >= need), rate, p.same)


def _runs(flag: np.ndarray, value: np.ndarray, linked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge flagged neighbours i, i+1 into one event when linked[i] (same vehicle)."""
    idx = np.flatnonzero(flag)
    if idx.size == 0:
        return idx, np.empty(0)
    new = np.concatenate([[True], (idx[1:] != idx[:-1] + 1) | ~linked[idx[:-1]]])
    group = np.cumsum(new) - 1
    peak = np.full(int(group[-1]) + 1, -np.inf)
    np.maximum.at(peak, group, value[idx])
    return idx[new], peak


def _turn_events(tr: Track) -> tuple[np.ndarray, np.ndarray]:
    """(first ping, largest heading change) of each run of windows turning more than TURN_DEG."""
    n = tr.n
    heading = _heading(tr)
    change = np.zeros(n)
    for k in range(1, int(TURN_WINDOW_S) + 1):  # pings k ahead, while within the window
        if k >= n:
            break
        j = np.arange(n - k)
        within = (tr.vehicle_index[j] == tr.vehicle_index[j + k]) & ((tr.ts[j + k] - tr.ts[j]) <= TURN_WINDOW_S * 1000)
        if not within.any():
            break  # pings k apart are all beyond the window (e.g. k = 3 at 5 s pings)
        fast = (tr.speed[j] >= TURN_MIN_MPH) & (tr.speed[j + k] >= TURN_MIN_MPH)
        d = np.abs((heading[j + k] - heading[j] + 180.0) % 360.0 - 180.0)
        d = np.where(within & fast & np.isfinite(d), d, 0.0)
        change[: n - k] = np.maximum(change[: n - k], d)
    # A turn is seen from several starting pings; consecutive ones are one event.
    return _runs(change >= TURN_DEG, change, np.append(tr.pairs.same, False))


def _heading(tr: Track) -> np.ndarray:
    """Reported heading; where missing, the bearing of travel to the next fix."""
    h = tr.heading.copy()
    missing = ~np.isfinite(h)
    if missing.any() and tr.n > 1:
        lat0, lon0 = np.radians(tr.lat[:-1]), np.radians(tr.lon[:-1])
        lat1, lon1 = np.radians(tr.lat[1:]), np.radians(tr.lon[1:])
        y = np.sin(lon1 - lon0) * np.cos(lat1)
        x = np.cos(lat0) * np.sin(lat1) - np.sin(lat0) * np.cos(lat1) * np.cos(lon1 - lon0)
        bearing = np.append(np.degrees(np.arctan2(y, x)) % 360.0, np.nan)
        bearing[:-1][~tr.pairs.same] = np.nan
        h[missing] = bearing[missing]
    return h


def detect(tr: Track) -> HarshEvents:
    if tr.n < 2:
        e = np.empty(0, np.int64)
        return HarshEvents(e, e, e, np.empty(0), np.empty(0, bool))
    parts = [
        (0, *_rate_events(tr, -1.0, BRAKE_MPHPS, ROUTINE_BRAKE_MPHPS), SEVERE_BRAKE_MEAN_MPHPS),
        (1, *_rate_events(tr, +1.0, ACCEL_MPHPS, ROUTINE_ACCEL_MPHPS), SEVERE_ACCEL_MEAN_MPHPS),
        (2, *_turn_events(tr), SEVERE_TURN_DEG),
    ]
    kind = np.concatenate([np.full(r.size, k) for k, r, _, _ in parts])
    row = np.concatenate([r for _, r, _, _ in parts]).astype(np.int64)
    mag = np.concatenate([m for _, _, m, _ in parts])
    severe = np.concatenate([m >= s for _, _, m, s in parts])
    return HarshEvents(kind, row, tr.ts[row], mag, severe)


def compute(inp: FlowInput) -> pa.Table:
    tr = track_of(inp)
    if tr.n == 0:
        return SCHEMA.empty_table()
    ev = detect(tr)
    p = tr.pairs
    nv = len(tr.vehicles)
    miles = np.bincount(tr.pair_vehicle, weights=np.where(p.counted, p.miles, 0.0), minlength=nv)
    all_miles = np.append(miles, miles.sum())  # the vehicles, then the fleet
    cols: dict[str, list] = {"fleet_id": [inp.fleet_id] * (nv + 1), "month": [inp.month] * (nv + 1),
                             "vehicle_id": [*tr.vehicles, None], "miles": all_miles.tolist()}
    owner = tr.vehicle_index[ev.row]
    for k, name in enumerate(KINDS):
        sel = ev.kind == k
        count = np.bincount(owner[sel], minlength=nv)
        severe = np.bincount(owner[sel & ev.severe], minlength=nv)
        all_count = np.append(count, count.sum())
        cols[f"{name}s"] = all_count.tolist()
        cols[f"{name}s_severe"] = np.append(severe, severe.sum()).tolist()
        cols[f"{name}s_per_1000_mi"] = [float(c / m * 1000) if m >= 1.0 else None for c, m in zip(all_count, all_miles)]
    cols["complete_month"] = [inp.complete] * (nv + 1)
    return pa.table(cols, schema=SCHEMA)


FLOW = Flow("harsh", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
