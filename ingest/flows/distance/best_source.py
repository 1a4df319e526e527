"""distance v3's rules: miles from the best source, state miles along the path (ingest/signals/distance.py).

Per vehicle-month: the odometer where it can be trusted (monotone, within a stated bound of GPS
distance per stretch, resets and glitches bridged with GPS distance), GPS path length otherwise
(fused speeds integrated, so sparse pings do not cut the road's bends); each pair's miles split
between states where the line between its fixes crosses a state line. Each vehicle row says
which source the vehicle-month used (`source`) and the share of its miles from the odometer.
"""

from __future__ import annotations

from typing import Any

from ingest.flows.base import FlowInput
from ingest.flows.signals import miles_of, series_of
from ingest.signals.distance import VehicleMiles


def _row(inp: FlowInput, vehicle_id: str | None, state: str, miles: float, source: str | None,
         odometer_share: float | None) -> dict[str, Any]:
    return {"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": vehicle_id, "state": state, "miles": miles,
            "source": source, "odometer_share": odometer_share, "complete_month": inp.complete}


def _share(odometer: float, total: float) -> float | None:
    return odometer / total if total > 0 else None


def vehicle(inp: FlowInput, _ctx: object) -> tuple[list[dict[str, Any]], VehicleMiles | None]:
    s = series_of(inp)
    if s.n < 2:
        return [], None
    est = miles_of(inp)
    share = _share(est.odometer_miles, est.miles)
    return [_row(inp, s.vehicle_id, code, m, est.source, share) for code, m in est.by_state.items()], est


def fleet(inp: FlowInput, _ctx: object, parts: list[VehicleMiles | None]) -> list[dict[str, Any]]:
    """Per state, the sum over vehicles; the source is every source the vehicles used."""
    got = [p for p in parts if p is not None]
    if not got:
        return []
    states: dict[str, float] = {}
    for p in got:
        for code, m in p.by_state.items():
            states[code] = states.get(code, 0.0) + m
    used = sorted({src for p in got for src in p.source.split("+")})
    source = "+".join(s for s in ("odometer", "gps") if s in used)
    share = _share(sum(p.odometer_miles for p in got), sum(p.miles for p in got))
    return [_row(inp, None, code, m, source, share) for code, m in sorted(states.items())]
