"""Feature accuracy against the simulator's ground truth: the worst errors, printed.

    python bench/accuracy.py [--vehicles 12] [--intervals 1 5]

The tests assert the acceptance bars; this prints how far inside them the features are.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.flows import distance, fatigue, radius  # noqa: E402
from ingest.flows.base import FlowInput  # noqa: E402
from sandbox.groundtruth import ground_truth  # noqa: E402
from sandbox.simulator import FleetSimulator, FleetSpec  # noqa: E402
from tests.pings import sim_table  # noqa: E402

MONTH = "2025-03"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=12)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--intervals", type=int, nargs="+", default=[1, 5])
    args = ap.parse_args()
    for iv in args.intervals:
        sim = FleetSimulator(FleetSpec("f", args.seed, args.vehicles, datetime(2025, 1, 1, tzinfo=timezone.utc),
                                       ping_interval_s=iv, event_rate=3.0))
        truth, states = ground_truth(sim, [MONTH])
        inp = FlowInput("f", MONTH, {"pings": sim_table(sim, [MONTH])}, True)
        d = distance.FLOW.compute(inp).to_pylist()
        miles: dict[str, float] = defaultdict(float)
        per_state = {}
        for r in d:
            if r["vehicle_id"]:
                miles[r["vehicle_id"]] += r["miles"]
                per_state[(r["vehicle_id"], r["state"])] = r["miles"]
        t = {r["vehicle_id"]: r for r in truth.to_pylist()}
        miles_err = max(abs(miles[v] / t[v]["miles"] - 1) for v in t)
        state_err = max(abs(per_state.get((s["vehicle_id"], s["state"]), 0) / s["miles"] - 1)
                        for s in states.to_pylist() if s["miles"] > 10)
        rad = {r["vehicle_id"]: r for r in radius.FLOW.compute(inp).to_pylist() if r["vehicle_id"]}
        exact = sum(rad[v]["radius_class"] == radius.radius_class(t[v]["p90_daily_max_from_home_mi"]) for v in t)
        p90_err = max(abs(rad[v]["p90_daily_radius_mi"] / t[v]["p90_daily_max_from_home_mi"] - 1) for v in t)
        fat = {r["vehicle_id"]: r for r in fatigue.FLOW.compute(inp).to_pylist() if r["vehicle_id"]}
        hours_err = max(abs(fat[v]["driving_hours"] / t[v]["driving_hours"] - 1) for v in t)
        print(f"{iv} s pings, {args.vehicles} vehicles: worst miles error {miles_err:.3%}, worst state error "
              f"{state_err:.3%}, radius class exact {exact}/{len(t)}, worst p90 radius error {p90_err:.2%}, "
              f"worst driving hours error {hours_err:.2%}", flush=True)


if __name__ == "__main__":
    main()
