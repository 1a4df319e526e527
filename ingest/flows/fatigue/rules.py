"""fatigue's rules, vehicle by vehicle (docs/features.md), on speeds where idle drift is not motion.

The limits are the FMCSA property-carrying rules (49 CFR 395.3): at most 11 hours of driving
after 10 consecutive hours off duty, and a 30-minute break after 8 cumulative hours of driving.
Off-duty time is taken to be time without driving: pings do not say whether a driver was on duty.
The fleet row comes from each vehicle's part: hours are sums of per-vehicle sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.motion import moving_track_of

NIGHT_START_H, NIGHT_END_H = 0.0, 6.0  # local time, the circadian low
DUTY_REST_S = 10 * 3600  # 10 hours without driving start a new duty period
DUTY_DRIVING_LIMIT_H = 11.0
BREAK_S = 30 * 60  # a 30 minute interruption of driving is a break
STRETCH_LIMIT_H = 8.0


@dataclass(frozen=True)
class Part:
    driving_s: float
    night_s: float
    duty_h: np.ndarray  # driving hours of each duty period
    stretch_h: np.ndarray  # driving hours of each stretch between breaks


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = moving_track_of(inp)
    driving = tr.pairs.driving_s
    # A pair's driving is night driving when the local time at its first ping is in the window.
    hour = tr.local_hour[:-1]
    night = (hour >= NIGHT_START_H) & (hour < NIGHT_END_H)
    return Part(float(driving.sum()), float(driving[night].sum()),
                tr.segments(DUTY_REST_S).driving_s / 3600.0, tr.segments(BREAK_S).driving_s / 3600.0)


def merge(parts: list[Part]) -> Part:
    return Part(walk.total(p.driving_s for p in parts), walk.total(p.night_s for p in parts),
                np.concatenate([p.duty_h for p in parts]), np.concatenate([p.stretch_h for p in parts]))


def row(p: Part) -> dict[str, Any]:
    driving, night = p.driving_s / 3600.0, p.night_s / 3600.0
    dh, sh = p.duty_h, p.stretch_h
    return {"driving_hours": driving, "night_driving_hours": night,
            "night_share": night / driving if driving > 0 else None,
            "duty_periods": int(dh.size), "duty_periods_over_11h": int((dh > DUTY_DRIVING_LIMIT_H).sum()),
            "max_duty_driving_hours": float(dh.max()) if dh.size else None,
            "stretches_over_8h": int((sh > STRETCH_LIMIT_H).sum()),
            "max_stretch_hours": float(sh.max()) if sh.size else None}
