"""Feature accuracy against the simulator's ground truth, per logging rate, the active rules next to the new ones.

    python bench/accuracy.py [--vehicles 12] [--seed 31] [--cases 1 5 30 60 event] [--per-vehicle]

Each case is one month (2025-03) of a uniform fleet logging at that rate ("event": event-based
logging on heading change, distance, stops and a 100 s timeout) on the messy signals of
docs/sandbox.md: the receiver model (speed noise, position error, heading noise, devices without
heading, idle drift, dropouts, bursts, device-offline gaps), roads that bend, Doppler speed
outliers, and ECU odometers (offset, 0.125 km steps, calibration and drift, resets, glitches,
missing stretches, a quarter of the devices without one).

"before" is what the active flows compute (harsh@3's detector, speed@3's episodes, distance@2's
miles); "after" is ingest/signals. Per case:
  - harsh braking / acceleration: recall of covered clear and near-threshold events and the
    share of spurious detections (`null` where the rule says the sampling cannot support it);
  - speeding episodes: the count against the true count (every true episode, covered or not);
  - miles: worst error per vehicle (with an odometer, and without one) and per (vehicle, state)
    with over 10 true miles; after: which distance source each vehicle-month used.
Both columns come from the same pings in the same run.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.flows import walk  # noqa: E402
from ingest.flows.base import FlowInput  # noqa: E402
from ingest.flows.harsh import detect as harsh_detect  # noqa: E402
from ingest.flows.motion import still  # noqa: E402
from ingest.flows.registry import builtin  # noqa: E402
from ingest.flows.speed.episodes import episodes as speed_episodes  # noqa: E402
from ingest.flows.track import load  # noqa: E402
from ingest.signals import distance as sig_distance  # noqa: E402
from ingest.signals import episodes as sig_episodes  # noqa: E402
from ingest.signals import harsh as sig_harsh  # noqa: E402
from ingest.signals.series import vehicle_series  # noqa: E402
from sandbox.groundtruth import ground_truth, match, month_table, true_events  # noqa: E402
from sandbox.messy import messy_spec  # noqa: E402
from sandbox.simulator import FleetSimulator  # noqa: E402

MONTH = "2025-03"


def messy_fleet(case: str, vehicles: int, seed: int) -> FleetSimulator:
    return FleetSimulator(messy_spec(case, vehicles, seed))


def _fmt(m: dict) -> str:
    return f"{m['recall_clear']:.1%} / {m['recall_near']:.0%} / {m['spurious']:.1%} ({m['found']})"


def _worst(errors: list[float]) -> str:
    return f"{max(errors, key=abs):+.2%}" if errors else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=12)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--cases", nargs="+", default=["1", "5", "30", "60", "event"])
    ap.add_argument("--per-vehicle", action="store_true", help="print every vehicle's and state's miles error")
    args = ap.parse_args()
    print("harsh: recall clear / recall near / spurious (detections); `null` = the sampling cannot support the rule")
    for case in args.cases:
        sim = messy_fleet(case, args.vehicles, args.seed)
        table = month_table(sim, MONTH)
        inp = FlowInput("f", MONTH, {"pings": table}, True)
        tr = load(table)
        by_vehicle = {v.vehicle_id: v for v in sim.vehicles}
        med = np.median(np.diff(tr.ts)[np.diff(tr.ts) < 600_000]) / 1000
        print(f"\n== {case}{' s' if case != 'event' else ''}: {args.vehicles} vehicles, {table.num_rows:,} pings, "
              f"median interval {med:.0f} s", flush=True)
        series = [vehicle_series(table.slice(int(a), int(b - a))) for a, b in zip(tr.starts, tr.ends)]

        # --- harsh
        old = harsh_detect.detect(tr)
        new = [sig_harsh.detect(s) for s in series]
        for k, kind in enumerate(("harsh_brake", "harsh_accel")):
            truth = true_events(sim, MONTH, kind)
            iv = 1 if case == "event" else int(case)
            tol = (iv + 8) * 1000
            ok = old.measurable[:, k]
            f_old = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(old.kind, old.row, old.ts_ms) if kk == k]
            measured = {tr.vehicles[v] for v in range(len(tr.vehicles)) if ok[v]}
            before = _fmt(match([t for t in truth if t[0] in measured], f_old, tol)) if ok.any() else \
                f"null ({old.reason[0][k]})"
            f_new = [(s.vehicle_id, int(t)) for s, d in zip(series, new) for t in (d.brake_ms if k == 0 else d.accel_ms)]
            measured_new = {s.vehicle_id for s, d in zip(series, new) if d.reason is None}
            after = _fmt(match([t for t in truth if t[0] in measured_new], f_new, tol)) if measured_new else \
                f"null ({new[0].reason})"
            print(f"  {kind:12s} before {before:40s} after {after}")

        # --- speeding: counts against every true episode
        truth_sp = true_events(sim, MONTH, "speeding")
        n_true = len(truth_sp)
        n_old = len(speed_episodes(still(tr))[0])
        n_new = sum(len(sig_episodes.speeding(s).first_ms) for s in series)
        print(f"  speeding     true {n_true}, before {n_old} ({n_old / n_true - 1:+.1%}), "
              f"after {n_new} ({n_new / n_true - 1:+.1%})")

        # --- miles
        t, st = ground_truth(sim, [MONTH])
        truth_v = {r["vehicle_id"]: r["miles"] for r in t.to_pylist()}
        truth_s = {(r["vehicle_id"], r["state"]): r["miles"] for r in st.to_pylist()}
        has_odo = {vid for vid, v in by_vehicle.items() if v.odometer is not None and v.odometer.present}
        old_v: dict[str, float] = defaultdict(float)
        old_s: dict[tuple[str, str], float] = {}
        for r in walk.compute(builtin()[("distance", 2)], inp).to_pylist():
            if r["vehicle_id"]:
                old_v[r["vehicle_id"]] += r["miles"]
                old_s[(r["vehicle_id"], r["state"])] = r["miles"]
        new_v: dict[str, float] = {}
        new_s: dict[tuple[str, str], float] = {}
        sources: dict[str, str] = {}
        for s in series:
            est = sig_distance.vehicle_miles(s)
            new_v[s.vehicle_id] = est.miles
            sources[s.vehicle_id] = est.source
            for code, m in est.by_state.items():
                new_s[(s.vehicle_id, code)] = m
        for label, miles_v, miles_s in (("before", old_v, old_s), ("after", new_v, new_s)):
            e_odo = [miles_v.get(v, 0) / m - 1 for v, m in truth_v.items() if m > 0 and v in has_odo]
            e_gps = [miles_v.get(v, 0) / m - 1 for v, m in truth_v.items() if m > 0 and v not in has_odo]
            e_st = [miles_s.get(k, 0) / m - 1 for k, m in truth_s.items() if m > 10 and k[0] in has_odo]
            e_st_gps = [miles_s.get(k, 0) / m - 1 for k, m in truth_s.items() if m > 10 and k[0] not in has_odo]
            print(f"  miles {label:6s} worst per vehicle: with odometer {_worst(e_odo)}, without {_worst(e_gps)}; "
                  f"per state (>10 mi): with odometer {_worst(e_st)}, without {_worst(e_st_gps)}")
            if args.per_vehicle:
                for v, m in sorted(truth_v.items()):
                    if m > 0:
                        print(f"      {v} {by_vehicle[v].kind:8s} odo={v in has_odo!s:5s} {miles_v.get(v, 0) / m - 1:+.3%} "
                              f"({sources.get(v, '') if label == 'after' else ''})")
                for k, m in sorted(truth_s.items()):
                    if m > 10:
                        print(f"      {k[0]} {k[1]} {m:8.1f} mi {miles_s.get(k, 0) / m - 1:+.3%}")
        counts: dict[str, int] = defaultdict(int)
        for src in sources.values():
            counts[src] += 1
        print("  distance source (after): " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())), flush=True)


if __name__ == "__main__":
    main()
