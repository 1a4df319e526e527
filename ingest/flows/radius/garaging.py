"""Garaging: where the truck spends its nights (docs/features.md, radius).

Rests (no driving for REST_S or more) are scored by how many local 02:00 instants they span,
rest locations are pooled on a ~1 km grid, and the best 3x3 block of cells wins. Nights away on
tour spread over many cities; nights at the yard pile up in one place.
"""

from __future__ import annotations

import numpy as np

from ingest.flows.track import DAY_S, Track

REST_S = 3 * 3600  # no driving for this long: a rest that may hold a night
NIGHT_HOUR = 2  # a rest "holds a night" for each local 02:00 inside it
CELL_DEG = 0.01  # about 1.1 km north-south
MIN_NIGHTS = 2  # fewer and the garaging is unknown
LOCAL_MI, INTERMEDIATE_MI = 50.0, 200.0  # radius classes: local <= 50 < intermediate <= 200 < long_haul

def radius_class(p90_mi: float | None) -> str | None:
    if p90_mi is None:
        return None
    return "local" if p90_mi <= LOCAL_MI else "intermediate" if p90_mi <= INTERMEDIATE_MI else "long_haul"


def rests(tr: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vehicle, lat, lon, nights) of each rest, including those before the first and after the last drive."""
    seg = tr.segments(REST_S)
    out_v, out_lat, out_lon, out_start, out_end, out_off = [], [], [], [], [], []
    for v in range(len(tr.vehicles)):
        a, b = int(tr.starts[v]), int(tr.ends[v])
        s = np.flatnonzero(seg.vehicle == v)
        # Rests sit between drives; the month's first and last pings bound the outer ones. A rest
        # is placed at the first ping after the drive stopped (parked), or its last moving ping.
        stop_rows = np.concatenate([[a], np.minimum(seg.last[s] + 1, b - 1)]) if s.size else np.array([a])
        start_ts = np.concatenate([[tr.ts[a]], tr.ts[seg.last[s]]]) if s.size else np.array([tr.ts[a]])
        end_ts = np.concatenate([tr.ts[seg.first[s]], [tr.ts[b - 1]]]) if s.size else np.array([tr.ts[b - 1]])
        out_v.append(np.full(stop_rows.size, v))
        out_lat.append(tr.lat[stop_rows])
        out_lon.append(tr.lon[stop_rows])
        out_start.append(start_ts)
        out_end.append(end_ts)
        out_off.append(tr.utc_offset_s[stop_rows])
    v = np.concatenate(out_v)  # type: ignore[assignment]  # the loop's name reused
    off = np.concatenate(out_off).astype(np.int64)
    shift = NIGHT_HOUR * 3600
    start = (np.concatenate(out_start) // 1000 + off - shift) // DAY_S
    end = (np.concatenate(out_end) // 1000 + off - shift) // DAY_S
    return v, np.concatenate(out_lat), np.concatenate(out_lon), end - start  # type: ignore[return-value]  # as above


def garaging(lat: np.ndarray, lon: np.ndarray, nights: np.ndarray) -> tuple[float, float, int] | None:
    """(lat, lon, nights there) of the best 3x3 block of ~1 km cells, or None."""
    keep = nights > 0
    if nights[keep].sum() < MIN_NIGHTS:
        return None
    lat, lon, nights = lat[keep], lon[keep], nights[keep]
    ci, cj = np.round(lat / CELL_DEG).astype(np.int64), np.round(lon / CELL_DEG).astype(np.int64)
    score: dict[tuple[int, int], int] = {}
    for i, j, n in zip(ci, cj, nights):
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                score[(i + di, j + dj)] = score.get((i + di, j + dj), 0) + int(n)
    (bi, bj), best = max(score.items(), key=lambda kv: (kv[1], kv[0]))
    near = (np.abs(ci - bi) <= 1) & (np.abs(cj - bj) <= 1)
    w = nights[near].astype(float)
    return float((lat[near] * w).sum() / w.sum()), float((lon[near] * w).sum() / w.sum()), int(best)
