"""A vehicle's driven miles in the week (distance@2's pair rules), then the fleet's sum."""

from __future__ import annotations

from typing import Any

from ingest.flows.base import FlowInput
from ingest.flows.distance.rules import pair_miles
from ingest.flows.motion import moving_track_of


def vehicle_miles(inp: FlowInput) -> float:
    """One vehicle's driven miles over the pings it is given (the week's)."""
    return float(pair_miles(moving_track_of(inp))[1].sum())


def vehicle(inp: FlowInput, _ctx: Any) -> tuple[list[dict[str, Any]], float]:
    return [], vehicle_miles(inp)


def fleet(inp: FlowInput, _ctx: Any, parts: list[float]) -> list[dict[str, Any]]:
    return [{"fleet_id": inp.fleet_id, "week": inp.month, "miles": float(sum(parts)),
             "active_vehicles": sum(1 for m in parts if m > 0), "complete_week": inp.complete}]
