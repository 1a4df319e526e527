"""Local time of GPS pings, offline: IANA zone from position (tzfpy), UTC offset from zoneinfo.

Looking up every ping would cost seconds per fleet-month, and a truck crosses a zone line a few
times a week at most. So zones are looked up for every `SAMPLE`-th ping of each vehicle (4 min
and about 4 miles of highway at 5 s pings: a zone change is seen at most that late) and carried
forward to the pings in between; offsets are then resolved once per (zone, UTC hour), which
also gets daylight-saving changes right.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import tzfpy

SAMPLE = 48
HOUR_MS = 3_600_000


@lru_cache(maxsize=65_536)
def _zone_at(lat_cell: int, lon_cell: int) -> str:
    # 0.01 degree cells (about 1 km): zone lines are not drawn finer than that in practice.
    return tzfpy.get_tz(lon_cell / 100.0, lat_cell / 100.0) or "UTC"


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def utc_offsets_s(lat: np.ndarray, lon: np.ndarray, ts_ms: np.ndarray, starts: np.ndarray | None = None
                  ) -> np.ndarray:
    """UTC offset in seconds of each ping's local time (int32).

    `starts` are the row offsets where a new vehicle begins, so a zone is never carried from one
    vehicle to the next.
    """
    n = ts_ms.size
    if n == 0:
        return np.empty(0, np.int32)
    sample = np.zeros(n, bool)
    sample[::SAMPLE] = True
    if starts is not None:
        sample[starts[starts < n]] = True
    idx = np.flatnonzero(sample)
    # Cells as one non-negative integer key: (lat + 90°) * 100 * 10^5 + (lon + 180°) * 100.
    cells = (np.round(lat[idx] * 100).astype(np.int64) + 9_000) * 100_000 + (np.round(lon[idx] * 100).astype(np.int64)
                                                                              + 18_000)
    uniq, inverse = np.unique(cells, return_inverse=True)
    names = [_zone_at(int(c // 100_000) - 9_000, int(c % 100_000) - 18_000) for c in uniq]
    zone_names, zone_of_cell = np.unique(np.array(names, dtype=object), return_inverse=True)
    zone_of_sample = zone_of_cell[inverse]
    # Offsets per (zone, UTC hour) of the sampled pings.
    hours = ts_ms[idx] // HOUR_MS
    offsets = np.empty(idx.size, np.int32)
    for z, name in enumerate(zone_names):
        sel = zone_of_sample == z
        zone = _zone(str(name))
        hs, back = np.unique(hours[sel], return_inverse=True)
        per_hour = np.array([_offset(zone, int(h)) for h in hs], np.int32)
        offsets[sel] = per_hour[back]
    # Carry each sample's offset forward to the pings up to the next sample.
    owner = np.cumsum(sample) - 1
    return offsets[owner]


@lru_cache(maxsize=65_536)  # a month walked vehicle by vehicle asks for the same (zone, hour) once per vehicle
def _offset(zone: ZoneInfo | timezone, hour: int) -> int:
    off = datetime.fromtimestamp(hour * 3600, tz=zone).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def zone_name(lat: float, lon: float) -> str:
    return _zone_at(round(lat * 100), round(lon * 100))
