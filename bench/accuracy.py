"""Feature accuracy of the active rules against the simulator's ground truth, per ping interval.

    python bench/accuracy.py [--vehicles 12] [--seed 31] [--cases 1 2 5 10 30 5j]

For each case (a uniform fleet at that driving interval; "5j": 5 s with +-1 s jitter) one month
of the realistic simulator (speed noise, position error, heading noise, devices without
heading, idle drift, dropouts, bursts) goes through the active rules (the retired v1 rules'
figures are in the history of this file, before issue 24):
  - harsh braking / acceleration / sharp turns: recall of covered clear and near-threshold
    events and the share of spurious detections (GPS-derived; `null` where the
    measurability rule says the interval cannot support the kind);
  - speeding episodes: recall and spurious;
  - miles: worst error per vehicle and per (vehicle, state) with over 10 true miles;
  - driving hours (trips, the shared pair rules): worst error per vehicle.
The acceptance bars are asserted in tests/test_features_truth.py; this prints the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.flows import walk  # noqa: E402
from ingest.flows.base import FlowInput  # noqa: E402
from ingest.flows.harsh import detect as harsh  # noqa: E402
from ingest.flows.registry import builtin  # noqa: E402
from ingest.flows.speed.episodes import episodes  # noqa: E402
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
    for r in walk.compute(flow, inp).to_pylist():
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
    print("recall clear / recall near / spurious (detections); `null` = not measurable at this interval")
    flows = builtin()
    for case in args.cases:
        sim = fleet(case, args.vehicles, args.seed)
        iv = sim.spec.ping_interval_s
        table = month_table(sim, MONTH)
        inp = FlowInput("f", MONTH, {"pings": table}, True)
        tr = load(table)
        new = harsh.detect(tr)
        # the rule with its interval limit lifted: the measurement behind RATE_LIMIT_S
        lifted = harsh.detect(tr, rate_limit_s=1e9, pair_max_s=iv * 1.5 + 2 * sim.spec.jitter_s)
        print(f"\n== {case} s pings, {args.vehicles} vehicles, {table.num_rows:,} pings")
        for k, kind in enumerate(harsh.KINDS):
            truth = true_events(sim, MONTH, kind)
            tol = (iv + 8) * 1000
            ok = new.measurable[:, k]
            found = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(new.kind, new.row, new.ts_ms) if kk == k]
            measured = {tr.vehicles[v] for v in range(len(tr.vehicles)) if ok[v]}
            got = _fmt(match([t for t in truth if t[0] in measured], found, tol)) if ok.any() else \
                f"null ({new.reason[0][k]})"
            print(f"  {kind:12s} {got}")
            if k < 2 and not ok.any():
                f3 = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(lifted.kind, lifted.row, lifted.ts_ms)
                      if kk == k]
                print(f"  {'':12s} the rule without its interval limit: {_fmt(match(truth, f3, tol))}")
        truth_sp = true_events(sim, MONTH, "speeding")
        owner, first, _ = episodes(tr)
        m = match(truth_sp, [(tr.vehicles[v], int(tr.ts[f])) for v, f in zip(owner, first)], (iv + 5) * 1000)
        print(f"  speeding     recall {m['recall_clear']:.1%}, spurious {m['spurious']:.1%} ({m['found']})")
        t, st = ground_truth(sim, [MONTH])
        truth = {r["vehicle_id"]: r for r in t.to_pylist()}
        states = st.to_pylist()
        wv, ws = miles_errors(flows[("distance", 2)], inp, truth, states)
        print(f"  miles        worst per vehicle {wv:+.3%}, worst per state (>10 mi) {ws:+.3%}")
        rows = {r["vehicle_id"]: r for r in walk.compute(flows[("trips", 3)], inp).to_pylist() if r["vehicle_id"]}
        hours = max((rows[v]["driving_hours"] / truth[v]["driving_hours"] - 1 for v in truth
                     if truth[v]["driving_hours"] > 0), key=abs)
        print(f"  driving hrs  worst per vehicle {hours:+.2%}", flush=True)

if __name__ == "__main__":
    main()
