"""quote_summary's rules: the quote window's figures from the month features it reads (docs/features.md).

Every figure is a ratio of sums over the window's months, never an average of monthly ratios, and
uses only the months its inputs cover (the `<figure>_months` column):

- miles: distance@2's fleet miles; state shares of those miles, largest first;
- radius class: the class (radius@2's rule) of the median of the months' fleet p90 daily radius;
- harsh events per 1,000 mi: harsh@3's measurable fleet counts of every kind over harsh@3's miles of
  those months (null where no month was measurable, with the TSP's or the sampling's reason);
- speeding episodes per 1,000 mi: speed@3's episodes over distance@2's miles of the same months;
- night share: fatigue@3's night driving hours over its driving hours;
- active vehicles: vehicles with driving time in any month (trips@3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ingest.flows.base import FlowInput
from ingest.flows.radius.garaging import radius_class

MIN_MILES = 100.0  # fewer miles make a rate per 1,000 mi noise, not a figure


def _fleet_rows(inp: FlowInput, name: str) -> dict[str, list[dict[str, Any]]]:
    """month -> the fleet rows (vehicle_id null) of one input; {} when it has none."""
    t: pa.Table | None = inp.tables.get(name)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in (t.to_pylist() if t is not None else []):
        if r.get("vehicle_id") is None:
            out.setdefault(r["month"], []).append(r)
    return out


def summary(inp: FlowInput) -> list[dict[str, Any]]:
    n_key, _, last = inp.month.partition(":")
    n = int(n_key[1:])
    months = _months_to(last, n)
    dist, speed, harsh = _fleet_rows(inp, "distance@2"), _fleet_rows(inp, "speed@3"), _fleet_rows(inp, "harsh@3")
    radius, fatigue = _fleet_rows(inp, "radius@2"), _fleet_rows(inp, "fatigue@3")
    row: dict[str, Any] = {"fleet_id": inp.fleet_id, "month": inp.month, "first_month": months[0], "last_month": last,
                           "window_months": n}
    # miles and where they were driven
    by_state: dict[str, float] = {}
    for rows in dist.values():
        for r in rows:
            by_state[r["state"]] = by_state.get(r["state"], 0.0) + r["miles"]
    miles = float(np.sum(list(by_state.values()))) if by_state else None
    row.update(miles=miles, miles_months=len(dist), complete_window=len(dist) == n,
               miles_reason=None if dist else "no distance features in the window",
               state_shares=[{"state": s, "share": m / miles} for s, m in
                             sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0]))] if miles else [])
    # radius of operation
    p90 = [r["p90_daily_radius_mi"] for rows in radius.values() for r in rows if r["p90_daily_radius_mi"] is not None]
    row.update(radius_class=radius_class(float(np.median(p90))) if p90 else None, radius_months=len(p90),
               radius_reason=None if p90 else "no month with a known garaging")
    # harsh events, where measurable
    counts, h_miles, h_months, reasons = 0, 0.0, 0, []
    for rows in harsh.values():
        r = rows[0]
        kinds = [k for k in ("harsh_brake", "harsh_accel", "sharp_turn") if r[f"{k}_measurable"]]
        if not kinds:
            reasons.append(r["harsh_brake_reason"])
            continue
        counts += sum(int(r[f"{k}s"] or 0) for k in kinds)
        h_miles += float(r["miles"] or 0.0)
        h_months += 1
    row.update(harsh_months=h_months, **_rate(counts, h_miles, h_months,
                                              next((x for x in reasons if x), "no harsh features in the window"),
                                              "harsh"))
    # speeding, over the distance miles of the months that have both
    s_months = [m for m in speed if m in dist]
    s_miles = float(sum(r["miles"] for m in s_months for r in dist[m]))
    episodes = sum(int(speed[m][0]["speeding_episodes"] or 0) for m in s_months)
    row.update(speeding_months=len(s_months), **_rate(episodes, s_miles, len(s_months),
                                                       "no speed features in the window", "speeding"))
    # night share
    driving = sum(float(rows[0]["driving_hours"] or 0.0) for rows in fatigue.values())
    night = sum(float(rows[0]["night_driving_hours"] or 0.0) for rows in fatigue.values())
    row.update(night_share=night / driving if driving > 0 else None, night_months=len(fatigue),
               night_reason=None if driving > 0 else ("no driving in the window" if fatigue
                                                      else "no fatigue features in the window"))
    # active vehicles
    trips: pa.Table | None = inp.tables.get("trips@3")
    active: set[str] = set()
    t_months: set[str] = set()
    for r in (trips.to_pylist() if trips is not None else []):
        t_months.add(r["month"])
        if r["vehicle_id"] is not None and (r["driving_hours"] or 0) > 0:
            active.add(r["vehicle_id"])
    row.update(active_vehicles=len(active) if t_months else None, active_vehicles_months=len(t_months),
               active_vehicles_reason=None if t_months else "no trips features in the window")
    return [row]


def _rate(count: int, miles: float, months: int, why_none: str, name: str) -> dict[str, Any]:
    if months == 0:
        return {f"{name}_per_1000_mi": None, f"{name}_reason": why_none}
    if miles < MIN_MILES:
        return {f"{name}_per_1000_mi": None, f"{name}_reason": f"{miles:.0f} mi in the covered months; a rate needs "
                                                               f"{MIN_MILES:.0f}"}
    return {f"{name}_per_1000_mi": count / miles * 1000.0, f"{name}_reason": None}


def _months_to(last: str, n: int) -> list[str]:
    y, m = int(last[:4]), int(last[5:7])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]
