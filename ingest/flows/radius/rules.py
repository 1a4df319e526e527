"""radius's rules, vehicle by vehicle (docs/features.md): garaging (garaging.py), the farthest
moving ping of each local day from it, and the share of miles beyond 50 and 200 miles.

The fleet row comes from each vehicle's part (its garaging, nights, the farthest distance of each
active day, miles near and far): mile shares are ratios of sums of per-vehicle sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geo.distance import METERS_PER_MILE, haversine_m
from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.radius.garaging import INTERMEDIATE_MI, LOCAL_MI, garaging, radius_class, rests
from ingest.flows.track import quantile, track_of


@dataclass(frozen=True)
class Part:
    home: tuple[float, float, int] | None  # a vehicle's garaging (lat, lon, nights); None for the fleet
    home_nights: int | None  # nights at garaging, summed over vehicles whose garaging is known
    known: bool  # some garaging is known
    nights: int  # nights observed
    active_days: int
    radii: np.ndarray  # farthest miles from garaging of each active day (known garaging only)
    miles: float  # counted miles of vehicles with known garaging
    miles_beyond: tuple[float, float]  # of those, beyond LOCAL_MI and INTERMEDIATE_MI


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = track_of(inp)
    r_v, r_lat, r_lon, r_nights = rests(tr)
    home = garaging(r_lat, r_lon, r_nights)
    moving = tr.speed > 0
    day, inv = np.unique(tr.local_day[moving], return_inverse=True)
    if home is None:
        return Part(None, None, False, int(r_nights.sum()), int(day.size), np.empty(0), 0.0, (0.0, 0.0))
    # Daily radius: the farthest moving ping of each local day from garaging.
    from_home = np.full(tr.n, np.nan)
    from_home[moving] = haversine_m(tr.lat[moving], tr.lon[moving], home[0], home[1]) / METERS_PER_MILE
    day_max = np.full(day.size, -np.inf)
    np.maximum.at(day_max, inv, np.nan_to_num(from_home[moving], nan=-np.inf))
    # Miles by distance from garaging: each counted pair at the mean of its ends' distances
    # (a counted pair is moving at one end at least; a parked end sits where the moving one stopped).
    idx = np.flatnonzero(tr.pairs.counted)
    mid = np.nanmean(np.stack([from_home[idx], from_home[idx + 1]]), axis=0) if idx.size else np.empty(0)
    miles = tr.pairs.miles[idx]
    return Part(home, home[2], True, int(r_nights.sum()), int(day.size), day_max[np.isfinite(day_max)],
                float(miles.sum()), (float(miles[mid > LOCAL_MI].sum()), float(miles[mid > INTERMEDIATE_MI].sum())))


def merge(parts: list[Part]) -> Part:
    nights = [p.home_nights for p in parts if p.home_nights is not None]
    return Part(None, sum(nights) if nights else None, any(p.known for p in parts), sum(p.nights for p in parts),
                sum(p.active_days for p in parts), np.concatenate([p.radii for p in parts]),
                walk.total(p.miles for p in parts),
                (walk.total(p.miles_beyond[0] for p in parts), walk.total(p.miles_beyond[1] for p in parts)))


def row(p: Part) -> dict[str, Any]:
    p90 = quantile(p.radii, 0.9)
    return {"garaging_lat": p.home[0] if p.home else None, "garaging_lon": p.home[1] if p.home else None,
            "garaging_nights": p.home_nights, "nights_observed": p.nights, "active_days": p.active_days,
            "max_daily_radius_mi": float(p.radii.max()) if p.radii.size else None, "p90_daily_radius_mi": p90,
            "share_miles_beyond_50": p.miles_beyond[0] / p.miles if p.miles > 0 else None,
            "share_miles_beyond_200": p.miles_beyond[1] / p.miles if p.miles > 0 else None,
            "radius_class": radius_class(p90) if p.known else None}
