"""idle_share's rules, one vehicle at a time (fleetlake hands each vehicle's pings to `part`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.flows.base import FlowInput
from ingest.flows.motion import moving_track_of

IDLE_GAP_S = 120.0  # devices report every few seconds while the engine runs; a longer silence is parked


@dataclass(frozen=True)
class Part:
    idle_s: float
    driving_s: float


def part(inp: FlowInput, _ctx: object) -> Part:
    tr = moving_track_of(inp)  # speeds under 2 mph count as standing (receiver drift is not motion)
    p = tr.pairs
    standing = (tr.speed[:-1] == 0) & (tr.speed[1:] == 0) & (p.dt_s <= IDLE_GAP_S)
    return Part(float(p.dt_s[standing].sum()), float(p.driving_s.sum()))


def merge(parts: list[Part]) -> Part:
    return Part(float(np.sum([q.idle_s for q in parts])), float(np.sum([q.driving_s for q in parts])))


def row(q: Part) -> dict[str, Any]:
    on = q.idle_s + q.driving_s
    return {"idle_hours": q.idle_s / 3600.0, "driving_hours": q.driving_s / 3600.0,
            "idle_share": q.idle_s / on if on > 0 else None,
            "idle_share_reason": None if on > 0 else "no engine-on time in the month"}
