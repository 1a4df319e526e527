"""Feature accuracy against the simulator's ground truth, per ping interval, old rules next to new.

    python bench/accuracy.py [--vehicles 12] [--seed 31] [--cases 1 2 5 10 30 5j]

For each case (a uniform fleet at that driving interval; "5j": 5 s with +-1 s jitter) one month
of the realistic simulator (speed noise, position error, heading noise, devices without
heading, idle drift, dropouts, bursts) goes through the v1 and v2 rules, side by side:
  - harsh braking / acceleration / sharp turns: recall of covered clear and near-threshold
    events and the share of spurious detections (GPS-derived; v2 prints `null` where its
    measurability rule says the interval cannot support the kind);
  - speeding episodes: recall and spurious;
  - miles: worst error per vehicle and per (vehicle, state) with over 10 true miles;
  - driving hours (trips v1 and v2, the shared pair rules): worst error per vehicle.
The acceptance bars are asserted in tests/test_features_truth.py; this prints the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.flows import distance, distance2, harsh, harsh2, speed, speed2, trips, trips2  # noqa: E402
from ingest.flows.base import FlowInput  # noqa: E402
from ingest.flows.track import load  # noqa: E402
from sandbox.groundtruth import ground_truth, match, month_table, true_events  # noqa: E402
from sandbox.simulator import FleetSimulator, FleetSpec  # noqa: E402

MONTH = "2025-03"


def fleet(case: str, vehicles: int, seed: int) -> FleetSimulator:
    iv, jitter = (int(case[:-1]), 1) if case.endswith("j") else (int(case), 0)
    return FleetSimulator(FleetSpec("f", seed, vehicles, datetime(2025, 1, 1, tzinfo=timezone.utc), ping_interval_s=iv,
                                    jitter_s=jitter, event_rate=3.0, no_heading_share=0.25))


def _fmt(m: dict) -> str:
    return f"{m['recall_clear']:.1%} / {m['recall_near']:.0%} / {m['spurious']:.1%} ({m['found']})"


def miles_errors(flow, inp: FlowInput, truth: dict, states: list[dict]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    miles: dict[str, float] = defaultdict(float)
    per_state = {}
    for r in flow.compute(inp).to_pylist():
        if r["vehicle_id"]:
            miles[r["vehicle_id"]] += r["miles"]
            per_state[(r["vehicle_id"], r["state"])] = r["miles"]
    worst_v = max((miles[v] / t["miles"] - 1 for v, t in truth.items() if t["miles"] > 0), key=abs)
    worst_s = max((per_state.get((s["vehicle_id"], s["state"]), 0) / s["miles"] - 1 for s in states if s["miles"] > 10),
                  key=abs)
    return worst_v, worst_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=12)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--cases", nargs="+", default=["1", "2", "5", "10", "30", "5j"])
    args = ap.parse_args()
    print("recall clear / recall near / spurious (detections); v2 `null` = not measurable at this interval")
    for case in args.cases:
        sim = fleet(case, args.vehicles, args.seed)
        iv = sim.spec.ping_interval_s
        table = month_table(sim, MONTH)
        inp = FlowInput("f", MONTH, {"pings": table}, True)
        tr = load(table)
        old, new = harsh.detect(tr), harsh2.detect(tr)
        # the v2 rule with its interval limit lifted: the measurement behind RATE_LIMIT_S
        lifted = harsh2.detect(tr, rate_limit_s=1e9, pair_max_s=iv * 1.5 + 2 * sim.spec.jitter_s)
        print(f"\n== {case} s pings, {args.vehicles} vehicles, {table.num_rows:,} pings")
        for k, kind in enumerate(harsh2.KINDS):
            truth = true_events(sim, MONTH, kind)
            tol = (iv + 8) * 1000
            f1 = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(old.kind, old.row, old.ts_ms) if kk == k]
            ok = new.measurable[:, k]
            f2 = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(new.kind, new.row, new.ts_ms) if kk == k]
            measured = {tr.vehicles[v] for v in range(len(tr.vehicles)) if ok[v]}
            v2 = _fmt(match([t for t in truth if t[0] in measured], f2, tol)) if ok.any() else \
                f"null ({new.reason[0][k]})"
            print(f"  {kind:12s} v1 {_fmt(match(truth, f1, tol)):34s} v2 {v2}")
            if k < 2 and not ok.any():
                f3 = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(lifted.kind, lifted.row, lifted.ts_ms)
                      if kk == k]
                print(f"  {'':12s} v2 rule without its interval limit: {_fmt(match(truth, f3, tol))}")
        truth_sp = true_events(sim, MONTH, "speeding")
        for name, fn in (("v1", speed.episodes), ("v2", speed2.episodes)):
            owner, first, _ = fn(tr)
            m = match(truth_sp, [(tr.vehicles[v], int(tr.ts[f])) for v, f in zip(owner, first)], (iv + 5) * 1000)
            print(f"  speeding     {name} recall {m['recall_clear']:.1%}, spurious {m['spurious']:.1%} ({m['found']})")
        t, st = ground_truth(sim, [MONTH])
        truth = {r["vehicle_id"]: r for r in t.to_pylist()}
        states = st.to_pylist()
        for name, flow in (("v1", distance.FLOW), ("v2", distance2.FLOW)):
            wv, ws = miles_errors(flow, inp, truth, states)
            print(f"  miles        {name} worst per vehicle {wv:+.3%}, worst per state (>10 mi) {ws:+.3%}")
        for name, flow in (("v1", trips.FLOW), ("v2", trips2.FLOW)):
            rows = {r["vehicle_id"]: r for r in flow.compute(inp).to_pylist() if r["vehicle_id"]}
            hours = max((rows[v]["driving_hours"] / truth[v]["driving_hours"] - 1 for v in truth
                         if truth[v]["driving_hours"] > 0), key=abs)
            print(f"  driving hrs  {name} worst per vehicle {hours:+.2%}", flush=True)


if __name__ == "__main__":
    main()
