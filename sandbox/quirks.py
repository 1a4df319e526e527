"""What real TSP APIs send that a naive client trips on, switchable per fleet.

Faults (`faults.py`) are trouble: errors, drops, junk. Quirks are the APIs working as documented
but not as a first client expects: times with offsets, absent fields, integers for floats, an odometer
on its own clock. Every quirk keeps the values intact (or says exactly which it changed, through
`picked`), so a test can still demand the simulator's pings exactly. Public sources of each
behaviour are listed in docs/sandbox.md.

Decisions are a pure function of (seed, quirk, vehicle, point time): vectorised (splitmix64 over
the millisecond timestamps), so pages render at full speed and tests can replay them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np


@dataclass(frozen=True)
class Quirks:
    seed: int = 0
    local_offsets: bool = False  # times in the truck's home zone with its UTC offset (-05:00, DST hours)
    whole_seconds: float = 0.0  # share of whole-second times sent without fractions ("...:05Z")
    # share of points whose optional fields (speed, heading) are left out; of the drivers' routes'
    # records, those whose optional fields fleetlake does not keep (sandbox/record_quirks.py)
    absent_optional: float = 0.0
    extra_fields: bool = False  # fields the client does not know, on points, vehicles and drivers' records
    ints_for_floats: bool = False  # whole-number values sent as JSON integers (0, not 0.0)
    empty_gps: bool = False  # Samsara: vehicles in a page without points, as "gps": [] or no gps key
    # Samsara: pages cut short of the limit at varying sizes; the drivers' routes end on an empty page
    page_sizes: bool = False
    odometer_own_times: bool = False  # Samsara: gpsOdometerMeters on its own clock, not the GPS times
    north_as_360: float = 0.0  # share of moving points whose heading is sent as 360.0 (due north)
    null_speed: float = 0.0  # Motive: share of points with "speed": null
    paged_history: bool = False  # Motive: /v3/vehicle_locations paged (25 by default, at most 100)
    # Hostile servers (sandbox/hostile.py), Samsara GPS history; never part of `realistic()`.
    endless_pages: bool = False  # empty pages saying there is more, each with a fresh cursor, forever
    trickle: bool = False  # the page one byte at a time, half a second apart
    gzip_bomb: bool = False  # about 1 MB of gzip that inflates to 1 GB
    huge_page: bool = False  # one 200 MB page
    # Drivers' routes (sandbox/hostile_hos.py): about one record in 7 spoiled, one way each; never realistic().
    hostile_hos: bool = False

    def with_(self, **changes: Any) -> Quirks:
        return replace(self, **changes)

    @classmethod
    def realistic(cls, seed: int = 0) -> Quirks:
        """Every quirk on, at rates that exercise each path many times in a short pull."""
        return cls(seed=seed, local_offsets=True, whole_seconds=0.5, absent_optional=0.1, extra_fields=True,
                   ints_for_floats=True, empty_gps=True, page_sizes=True, odometer_own_times=True,
                   north_as_360=0.05, null_speed=0.05, paged_history=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quirks:
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown quirk(s): {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for k, v in data.items():
            default = known[k].default
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise ValueError(f"quirk {k} must be true or false")
                out[k] = v
            elif k == "seed":
                out[k] = int(v)
            else:
                x = float(v)
                if not 0.0 <= x <= 1.0:
                    raise ValueError(f"quirk {k} must be a probability in [0, 1]")
                out[k] = x
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def picked(self, name: str, vehicle_id: str, ts_ms: np.ndarray, share: float | None = None) -> np.ndarray:
        """Which points (by vehicle and time) the quirk `name` applies to, at rate `share`."""
        rate = getattr(self, name) if share is None else share
        if not rate:
            return np.zeros(len(ts_ms), bool)
        return uniform(self.seed, name, vehicle_id, ts_ms) < rate


def _key(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def uniform(seed: int, name: str, vehicle_id: str, ts_ms: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per timestamp, fixed by (seed, name, vehicle): splitmix64 of the time."""
    with np.errstate(over="ignore"):
        z = np.asarray(ts_ms, dtype=np.int64).view(np.uint64) ^ np.uint64(_key(seed, name, vehicle_id))
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@lru_cache(maxsize=256)
def home_zone(lat: float, lon: float) -> ZoneInfo:
    import tzfpy

    return ZoneInfo(tzfpy.get_tz(lon, lat) or "UTC")


def render_times(ts_ms: np.ndarray, quirks: Quirks, vehicle_id: str, zone: ZoneInfo | None,
                 whole_seconds_only: bool = False) -> list[str]:
    """RFC 3339 strings for epoch-ms times, as the quirks say: 'Z' or a local offset, and with
    milliseconds or (for whole seconds, when picked) without. The instant is always exact."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if not len(ts):
        return []
    if quirks.local_offsets and zone is not None:
        offsets_s = _offsets_s(ts, zone)
    else:
        offsets_s = np.zeros(len(ts), np.int64)
    local = (ts + offsets_s * 1000).astype("datetime64[ms]")
    body = np.datetime_as_string(local, unit="ms").tolist()
    drop_ms = (ts % 1000 == 0) & (quirks.picked("whole_seconds", vehicle_id, ts) | whole_seconds_only)
    suffix = [_suffix(int(o)) for o in offsets_s] if quirks.local_offsets and zone is not None else None
    out = []
    for i, b in enumerate(body):
        if drop_ms[i]:
            b = b[:-4]
        out.append(b + (suffix[i] if suffix is not None else "Z"))
    return out


def _offsets_s(ts: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    # Offsets change a couple of times a year: compute them per hour, not per point.
    hours = ts // 3_600_000
    uniq, inverse = np.unique(hours, return_inverse=True)
    per_hour = np.array([_offset(int(h) * 3600, zone) for h in uniq], dtype=np.int64)
    # An hour containing a transition: judge its points one by one.
    out = per_hour[inverse]
    ends = np.array([_offset(int(h) * 3600 + 3599, zone) for h in uniq], dtype=np.int64)
    for k in np.nonzero(ends != per_hour)[0]:
        for i in np.nonzero(inverse == k)[0]:
            out[i] = _offset(ts[i] / 1000, zone)
    return out


def _offset(epoch_s: float, zone: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at that instant (a ZoneInfo always knows one)."""
    offset = datetime.fromtimestamp(epoch_s, tz=timezone.utc).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _suffix(offset_s: int) -> str:
    if offset_s == 0:
        return "+00:00"
    sign = "+" if offset_s > 0 else "-"
    h, m = divmod(abs(offset_s) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def num(x: float, ints: bool) -> str:
    """A JSON number; a whole one as an integer when the quirk says so (values stay exact)."""
    if ints and x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return repr(float(x))
