"""radius v1: garaging location and radius of operation per vehicle-month (docs/features.md).

Garaging is where the truck spends its nights: rests (no driving for REST_S or more) are
scored by how many local 02:00 instants they span, rest locations are pooled on a ~1 km grid,
and the best 3x3 block of cells wins. Nights away on tour spread over many cities; nights at
the yard pile up in one place.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geo.distance import METERS_PER_MILE, haversine_m
from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns, select, vehicle_and_fleet_rows
from ingest.flows.track import COLUMNS, DAY_S, Track, quantile, track_of

REST_S = 3 * 3600  # no driving for this long: a rest that may hold a night
NIGHT_HOUR = 2  # a rest "holds a night" for each local 02:00 inside it
CELL_DEG = 0.01  # about 1.1 km north-south
MIN_NIGHTS = 2  # fewer and the garaging is unknown
LOCAL_MI, INTERMEDIATE_MI = 50.0, 200.0  # radius classes: local <= 50 < intermediate <= 200 < long_haul

SCHEMA = pa.schema([
    *key_columns(),
    ("garaging_lat", pa.float64()), ("garaging_lon", pa.float64()), ("garaging_nights", pa.int64()),
    ("nights_observed", pa.int64()), ("active_days", pa.int64()),
    ("max_daily_radius_mi", pa.float64()), ("p90_daily_radius_mi", pa.float64()),
    ("share_miles_beyond_50", pa.float64()), ("share_miles_beyond_200", pa.float64()),
    ("radius_class", pa.string()),  # local | intermediate | long_haul; null when garaging is unknown
    ("complete_month", pa.bool_()),
])


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
    v = np.concatenate(out_v)  # type: ignore[assignment]  # the loop's name reused: radius@1's code stays as it was
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


def compute(inp: FlowInput) -> pa.Table:
    tr = track_of(inp)
    if tr.n == 0:
        return SCHEMA.empty_table()
    r_v, r_lat, r_lon, r_nights = rests(tr)
    nv = len(tr.vehicles)
    home = [garaging(r_lat[r_v == v], r_lon[r_v == v], r_nights[r_v == v]) for v in range(nv)]
    known = np.array([h is not None for h in home])
    h_lat = np.array([h[0] if h else np.nan for h in home])
    h_lon = np.array([h[1] if h else np.nan for h in home])

    # Daily radius: the farthest moving ping of each (vehicle, local day) from that vehicle's garaging.
    moving = tr.speed > 0
    from_home = np.full(tr.n, np.nan)
    from_home[moving] = haversine_m(tr.lat[moving], tr.lon[moving], h_lat[tr.vehicle_index[moving]],
                                    h_lon[tr.vehicle_index[moving]]) / METERS_PER_MILE
    mv = tr.vehicle_index[moving]
    day = tr.local_day[moving]
    key = mv.astype(np.int64) * 1_000_000 + day  # local day numbers stay below 10^6 until the year 4707
    days, inv = np.unique(key, return_inverse=True)
    day_max = np.full(days.size, -np.inf)
    np.maximum.at(day_max, inv, np.nan_to_num(from_home[moving], nan=-np.inf))
    day_owner = (days // 1_000_000).astype(np.int32)

    # Miles by distance from garaging: each counted pair at the mean of its ends' distances
    # (a counted pair is moving at one end at least; a parked end sits where the moving one stopped).
    p = tr.pairs
    idx = np.flatnonzero(p.counted)
    pv = tr.vehicle_index[idx]
    mid = np.nanmean(np.stack([from_home[idx], from_home[idx + 1]]), axis=0) if idx.size else np.empty(0)
    miles = p.miles[idx]

    def summarise(v: int | None) -> dict[str, object]:
        ok = [u for u in ([v] if v is not None else range(nv)) if known[u]]
        ds = select(day_owner, v)
        radii = day_max[ds][known[day_owner[ds]] & np.isfinite(day_max[ds])]
        ms = select(pv, v)
        keep = known[pv[ms]]
        m_miles, m_mid = miles[ms][keep], mid[ms][keep]
        total = float(m_miles.sum())
        p90 = quantile(radii, 0.9)
        h = home[v] if v is not None else None
        return {"garaging_lat": h[0] if h else None, "garaging_lon": h[1] if h else None,
                "garaging_nights": h[2] if h else (sum(home[u][2] for u in ok)  # type: ignore[index,misc]  # ok: known homes
                                                   if v is None and ok else None),
                "nights_observed": int(r_nights[select(r_v, v)].sum()),
                "active_days": int(day_owner[ds].size),
                "max_daily_radius_mi": float(radii.max()) if radii.size else None, "p90_daily_radius_mi": p90,
                "share_miles_beyond_50": float(m_miles[m_mid > LOCAL_MI].sum() / total) if total > 0 else None,
                "share_miles_beyond_200": float(m_miles[m_mid > INTERMEDIATE_MI].sum() / total) if total > 0 else None,
                "radius_class": radius_class(p90) if ok else None}

    return vehicle_and_fleet_rows(inp, tr.vehicles, SCHEMA, summarise)


FLOW = Flow("radius", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
