"""Ground truth per (vehicle, UTC month), as Arrow tables for tests and benchmarks."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from sandbox.simulator import EVENT_KINDS, FleetSimulator, month_bounds_ms

TRUTH_SCHEMA = pa.schema([
    ("fleet_id", pa.string()),
    ("vehicle_id", pa.string()),
    ("month", pa.string()),
    ("pings", pa.int64()),
    ("miles", pa.float64()),
    ("driving_hours", pa.float64()),
    ("max_from_home_mi", pa.float64()),
    # p90 over the day blocks with driving of each day's farthest point from home
    ("p90_daily_max_from_home_mi", pa.float64()),
    *[(k, pa.int64()) for k in EVENT_KINDS],
])

STATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()),
    ("vehicle_id", pa.string()),
    ("month", pa.string()),
    ("state", pa.string()),  # two-letter code, "--" outside every state
    ("miles", pa.float64()),
])


def ground_truth(sim: FleetSimulator, months: list[str]) -> tuple[pa.Table, pa.Table]:
    """(per vehicle-month truth, per vehicle-month-state miles) for the given 'YYYY-MM' months."""
    rows: list[dict[str, object]] = []
    state_rows: list[dict[str, object]] = []
    fid = sim.spec.fleet_id
    for month in months:
        lo, hi = month_bounds_ms(month)
        for v in sim.vehicles:
            miles = 0.0
            driving = 0
            far = 0.0
            daily: list[float] = []
            states: dict[str, float] = defaultdict(float)
            counts = dict.fromkeys(EVENT_KINDS, 0)
            for track in sim.day_tracks(v, lo, hi):
                t = track.truth
                miles += t.miles.get(month, 0.0)
                driving += t.driving_s.get(month, 0)
                far = max(far, t.max_from_home_mi.get(month, 0.0))
                if t.driving_s.get(month, 0) > 0:
                    daily.append(t.max_from_home_mi[month])
                for s, m in t.miles_by_state.get(month, {}).items():
                    states[s] += m
                for e in t.events:
                    if lo <= e.ts_ms < hi:
                        counts[e.kind] += 1
            rows.append({"fleet_id": fid, "vehicle_id": v.vehicle_id, "month": month,
                         "pings": len(sim.pings(v, lo, hi)), "miles": miles, "driving_hours": driving / 3600,
                         "max_from_home_mi": far,
                         "p90_daily_max_from_home_mi": float(np.quantile(daily, 0.9)) if daily else None,
                         **counts})
            state_rows.extend({"fleet_id": fid, "vehicle_id": v.vehicle_id, "month": month, "state": s, "miles": m}
                              for s, m in sorted(states.items()))
    return pa.Table.from_pylist(rows, TRUTH_SCHEMA), pa.Table.from_pylist(state_rows, STATE_SCHEMA)


def month_table(sim: FleetSimulator, month: str) -> pa.Table:
    """One month of a fleet's pings as candidate rows, the way a connector hands them over:
    a device that reports no heading or odometer sends none (null, not NaN)."""
    from partitions.schema import candidates

    lo, hi = month_bounds_ms(month)
    parts = []
    for v in sim.vehicles:
        c = sim.pings(v, lo, hi)
        n = len(c)
        heading = pa.array(c.heading_deg, pa.float64(), mask=np.isnan(c.heading_deg))
        parts.append(candidates({
            "fleet_id": [sim.spec.fleet_id] * n, "vehicle_id": [c.vehicle_id] * n,
            "ts": c.ts_ms.astype("datetime64[ms]"), "lat": c.lat, "lon": c.lon, "speed_mph": c.speed_mph,
            "heading_deg": heading, "odometer_mi": pa.array(c.odometer_mi, pa.float64(), mask=np.isnan(c.odometer_mi)), "source": ["samsara"] * n}))
    return pa.concat_tables(parts)


def true_events(sim: FleetSimulator, month: str, kind: str) -> list[tuple[str, int, bool, bool]]:
    """(vehicle, ts ms, near threshold, covered) of the true events of `kind` in `month`.

    An event no ping saw (a dropout, burst or offline gap over it) cannot be found from GPS by
    any rule, so recall is measured over the covered ones: pings before and after the event, and
    between them no gap over 1.5 driving intervals (speeding, which lasts a minute or more:
    none over 20 s).
    """
    lo, hi = month_bounds_ms(month)
    found = []
    for v in sim.vehicles:
        iv = v.interval_s + 2 * sim.spec.jitter_s
        pings = sim.pings(v, lo, hi).ts_ms
        for e in sim.events(v, lo, hi):
            if e.kind != kind:
                continue
            w0, w1 = e.ts_ms - iv * 1000, e.ts_ms + (e.duration_s + 1 + iv) * 1000
            a = int(np.searchsorted(pings, w0, "right")) - 1
            b = int(np.searchsorted(pings, w1, "left"))
            covered = a >= 0 and b < pings.size and \
                np.diff(pings[a:b + 1]).max() / 1000 <= (20 if kind == "speeding" else 1.5 * iv)
            found.append((v.vehicle_id, e.ts_ms, e.near_threshold, bool(covered)))
    return found


def match(truth: list[tuple[str, int, bool, bool]], found: list[tuple[str, int]], tol_ms: int
          ) -> dict[str, float | int]:
    """Recall of covered clear and near-threshold events, and the share of detections matching none.

    A detection matches the nearest true event of its vehicle within tol_ms (any true event,
    covered or not: finding a real event is never spurious); a second detection of an event
    already matched counts as spurious (one brake counted twice is one too many).
    """
    by_vehicle: dict[str, np.ndarray] = {}
    for vid in {t[0] for t in truth}:
        by_vehicle[vid] = np.array(sorted(t[1] for t in truth if t[0] == vid), np.int64)
    hit: set[tuple[str, int]] = set()
    spurious = 0
    for vid, ts in found:
        times = by_vehicle.get(vid, np.empty(0, np.int64))
        near = times[np.abs(times - ts) <= tol_ms]
        key = (vid, int(near[np.argmin(np.abs(near - ts))])) if near.size else None
        if key is not None and key not in hit:
            hit.add(key)
        else:
            spurious += 1
    clear = [(v, t) for v, t, n, c in truth if c and not n]
    close = [(v, t) for v, t, n, c in truth if c and n]
    return {"clear": len(clear), "near": len(close), "found": len(found),
            "recall_clear": sum(x in hit for x in clear) / len(clear) if clear else float("nan"),
            "recall_near": sum(x in hit for x in close) / len(close) if close else float("nan"),
            "spurious": spurious / len(found) if found else 0.0}
