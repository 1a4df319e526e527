"""fatigue v3: fatigue v2 computed vehicle by vehicle (issue 15; ingest/flows/walk.py).

The rules are v2's. The fleet row comes from each vehicle's part (driving and night seconds,
the driving hours of each duty period and each stretch) instead of the whole fleet-month's
arrays: hours are sums of per-vehicle sums, which can differ from v2's in the last bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows import fatigue, walk
from ingest.flows.base import Flow, FlowInput
from ingest.flows.fatigue import SCHEMA
from ingest.flows.motion import moving_track_of
from ingest.flows.track import COLUMNS


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
    night = (hour >= fatigue.NIGHT_START_H) & (hour < fatigue.NIGHT_END_H)
    return Part(float(driving.sum()), float(driving[night].sum()),
                tr.segments(fatigue.DUTY_REST_S).driving_s / 3600.0, tr.segments(fatigue.BREAK_S).driving_s / 3600.0)


def merge(parts: list[Part]) -> Part:
    return Part(walk.total(p.driving_s for p in parts), walk.total(p.night_s for p in parts),
                np.concatenate([p.duty_h for p in parts]), np.concatenate([p.stretch_h for p in parts]))


def row(p: Part) -> dict[str, Any]:
    driving, night = p.driving_s / 3600.0, p.night_s / 3600.0
    dh, sh = p.duty_h, p.stretch_h
    return {"driving_hours": driving, "night_driving_hours": night,
            "night_share": night / driving if driving > 0 else None,
            "duty_periods": int(dh.size), "duty_periods_over_11h": int((dh > fatigue.DUTY_DRIVING_LIMIT_H).sum()),
            "max_duty_driving_hours": float(dh.max()) if dh.size else None,
            "stretches_over_8h": int((sh > fatigue.STRETCH_LIMIT_H).sum()),
            "max_stretch_hours": float(sh.max()) if sh.size else None}


def compute(inp: FlowInput) -> Any:
    return walk.compute(FLOW, inp)


FLOW = Flow("fatigue", 3, ("pings",), SCHEMA, compute, columns=COLUMNS, walk=walk.parts_walk(part, merge, row))
