"""trips' rules, vehicle by vehicle (docs/features.md): trips end at a stop of STOP_S or a gap over
10 minutes (track.GAP_S), on speeds where idle drift is not motion (ingest/flows/motion.py).

The fleet row comes from each vehicle's part (its driving seconds, active days, and the minutes
and miles of each trip): driving hours are a sum of per-vehicle sums; trip counts, means and
percentiles are those of every trip of the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.motion import moving_track_of
from ingest.flows.track import quantile

STOP_S = 300  # a stop of 5 min or more ends a trip (a gap over 10 min does too: track.GAP_S)
MIN_TRIP_MILES = 0.1  # a speed blip in a yard is not a trip


@dataclass(frozen=True)
class Part:
    driving_s: float
    active_days: int
    minutes: np.ndarray  # one per trip
    miles: np.ndarray


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = moving_track_of(inp)
    seg = tr.segments(STOP_S)
    real = seg.miles >= MIN_TRIP_MILES
    driving = tr.pairs.driving_s
    # A day is a local calendar day (time zone of the truck's position) with any driving.
    days = np.unique(tr.local_day[:-1][driving > 0]).size
    return Part(float(driving.sum()), int(days), seg.duration_s[real] / 60.0, seg.miles[real])


def merge(parts: list[Part]) -> Part:
    return Part(walk.total(p.driving_s for p in parts), sum(p.active_days for p in parts),
                np.concatenate([p.minutes for p in parts]), np.concatenate([p.miles for p in parts]))


def row(p: Part) -> dict[str, Any]:
    n = p.minutes.size
    return {"driving_hours": p.driving_s / 3600.0, "active_days": p.active_days, "trips": n,
            "trip_minutes_mean": float(p.minutes.mean()) if n else None, "trip_minutes_p90": quantile(p.minutes, 0.9),
            "trip_miles_mean": float(p.miles.mean()) if n else None, "trip_miles_p90": quantile(p.miles, 0.9)}
