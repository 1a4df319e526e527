"""drivers' rules (docs/features.md): the fleet's driving split by who drove it.

Each pair of consecutive pings belongs to the driver assigned at its first ping (attribution.py);
its miles are distance@2's (the same numbers the fleet's flows use, so a fleet's drivers add up to
its vehicles' miles); its driving seconds are driving.py's, which keeps the start and stop ramps
the fleet flows' 2 mph rule drops, as the truth counts driving. Safety events and speeding episodes go to the
driver at their time. HOS violations are the TSP's, per driver, by the FMCSA rule they break.

- harsh and speeding rates are per 1,000 of the driver's miles; under MIN_MILES they are null
  with a reason (a few miles make any rate noise), and harsh is null with a reason in a month
  with no TSP safety events at all (fleetlake cannot tell zero events from none reported);
- night share: driving with the truck's local time in [00:00, 06:00), as fatigue@3 counts it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.months import month_bounds_ms
from ingest.flows.base import FlowInput
from ingest.flows.distance.rules import pair_miles
from ingest.flows.drivers.attribution import Timeline, timelines
from ingest.flows.drivers.driving import driving_s
from ingest.flows.drivers.schema import VIOLATIONS
from ingest.flows.fatigue.rules import NIGHT_END_H, NIGHT_START_H
from ingest.flows.motion import moving_track_of
from ingest.flows.speed.episodes import episodes
from ingest.flows.track import track_of

MIN_MILES = 100.0
HARSH_KINDS = ("harsh_brake", "harsh_accel", "harsh_turn")


@dataclass(frozen=True)
class Context:
    timelines: dict[str, Timeline]
    events: dict[str, np.ndarray]  # vehicle id -> epoch ms of its harsh TSP events
    has_events: bool
    violations: dict[str, Counter[str]]  # driver id -> violations by kind


@dataclass
class Sums:
    miles: float = 0.0
    driving_s: float = 0.0
    night_s: float = 0.0
    harsh: int = 0
    speeding: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def _strings(col: Any) -> list[Any]:
    return pc.cast(col, pa.string()).to_pylist()


def context(inp: FlowInput) -> Context:
    lo, hi = month_bounds_ms(inp.month)
    lines = timelines(inp.tables.get("assignments"), inp.tables.get("hos_logs"), hi)
    ev = inp.tables.get("events")
    events: dict[str, list[int]] = {}
    if ev is not None and ev.num_rows:
        for v, k, t in zip(_strings(ev["vehicle_id"]), _strings(ev["kind"]), pc.cast(ev["ts"], pa.int64()).to_pylist()):
            if k in HARSH_KINDS:
                events.setdefault(v, []).append(t)
    vio: dict[str, Counter[str]] = {}
    hv = inp.tables.get("hos_violations")
    if hv is not None and hv.num_rows:
        for d, k in zip(_strings(hv["driver_id"]), _strings(hv["kind"])):
            vio.setdefault(d, Counter())[k if k in VIOLATIONS else "other"] += 1
    return Context(lines, {v: np.sort(np.asarray(t, np.int64)) for v, t in events.items()},
                   ev is not None and ev.num_rows > 0, vio)


def vehicle(inp: FlowInput, ctx: Context) -> tuple[list[dict[str, Any]], dict[str | None, Sums]]:
    """No rows of its own: the vehicle's driving summed per driver (None: unassigned)."""
    tr = moving_track_of(inp)
    out: dict[str | None, Sums] = {}
    if tr.n == 0:
        return [], out
    vid = tr.vehicles[0]
    line = ctx.timelines.get(vid)
    counted, miles = pair_miles(tr)
    driving = driving_s(track_of(inp), tr.moving_interval_s)
    hour = tr.local_hour[:-1]
    night = (hour >= NIGHT_START_H) & (hour < NIGHT_END_H)
    who = _who(line, tr.ts[:-1])
    _, first, _ = episodes(tr)
    ev = ctx.events.get(vid, np.empty(0, np.int64))
    ev_who = _who(line, ev)
    sp_who = _who(line, tr.ts[first])
    for k, d in enumerate(line.driver if line is not None else ()):
        _add(out, d, who == k, counted, miles, driving, night, ev_who == k, sp_who == k)
    _add(out, None, who == -1, counted, miles, driving, night, ev_who == -1, sp_who == -1)
    return [], out


def _who(line: Timeline | None, ts: np.ndarray) -> np.ndarray:
    return line.at(ts) if line is not None else np.full(ts.size, -1)


def _add(out: dict[str | None, Sums], driver: str | None, sel: np.ndarray, counted: np.ndarray, miles: np.ndarray,
         driving: np.ndarray, night: np.ndarray, ev_sel: np.ndarray, sp_sel: np.ndarray) -> None:
    if not (sel.any() or ev_sel.any() or sp_sel.any()):
        return
    s = out.setdefault(driver, Sums())
    s.miles += float(miles[sel & counted].sum())
    s.driving_s += float(driving[sel].sum())
    s.night_s += float(driving[sel & night].sum())
    s.harsh += int(ev_sel.sum())
    s.speeding += int(sp_sel.sum())


def fleet(inp: FlowInput, ctx: Context, parts: list[dict[str | None, Sums]]) -> list[dict[str, Any]]:
    total: dict[str | None, Sums] = {}
    for part in parts:  # vehicle order: the sums do not depend on the walk's threads
        for d, s in part.items():
            t = total.setdefault(d, Sums())
            t.miles += s.miles
            t.driving_s += s.driving_s
            t.night_s += s.night_s
            t.harsh += s.harsh
            t.speeding += s.speeding
    for d in ctx.violations:  # a driver with violations and no driving of the month still has a row
        total.setdefault(d, Sums())
    fleet_s = sum(s.driving_s for s in total.values())
    rows = []
    for d in sorted(total, key=lambda x: (x is None, x or "")):
        s = total[d]
        few = s.miles < MIN_MILES
        vio = ctx.violations.get(d or "", Counter())
        rows.append({
            "fleet_id": inp.fleet_id, "month": inp.month, "driver_id": d, "miles": s.miles,
            "driving_hours": s.driving_s / 3600.0,
            "share_of_fleet_driving": s.driving_s / fleet_s if fleet_s > 0 else None,
            "night_share": s.night_s / s.driving_s if s.driving_s > 0 else None,
            "harsh_events": s.harsh if ctx.has_events else None,
            "harsh_per_1000mi": None if few or not ctx.has_events else s.harsh * 1000.0 / s.miles,
            "harsh_reason": (f"fewer than {MIN_MILES:g} miles" if few else
                             None if ctx.has_events else "no TSP safety events landed for this month"),
            "speeding_episodes": s.speeding,
            "speeding_per_1000mi": None if few else s.speeding * 1000.0 / s.miles,
            "speeding_reason": f"fewer than {MIN_MILES:g} miles" if few else None,
            **{f"violations_{k}": (vio.get(k, 0) if d is not None else None) for k in VIOLATIONS},
            "complete_month": inp.complete})
    return rows
