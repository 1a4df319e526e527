"""Feature passes on a Ray cluster against the local process pool, on the same machine, in the same run.

On one machine Ray cannot be faster than the local pool (the same cores); what this measures is
what Ray costs: the wall time of the same feature pass with FLEETLAKE_EXECUTOR=ray (a head and
a worker node, `ray start`, `--cpus-per-node` CPUs each) over the local pool with as many
workers as the cluster has CPUs, both against one SeaweedFS. The fleets are landed once; each
pass starts from a copy of the manifest as it was after landing, so every pass plans and runs
the same windows (after the first, their commits find the same content-named files and only
record them). A warm-up pass (local) comes first: code fingerprints and imports are not timed.

    python bench/bench_ray.py [--fleets 4] [--months 2] [--vehicles 4] [--interval 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOW_MS = 1_900_000_000_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleets", type=int, default=4)
    ap.add_argument("--months", type=int, default=2)
    ap.add_argument("--vehicles", type=int, default=4)
    ap.add_argument("--interval", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpus-per-node", type=int, default=1)
    args = ap.parse_args()

    from ingest.engine.ray_backend import RayBackend
    from ingest.engine.runs import run_features
    from ingest.flows.registry import active_flows
    from partitions import Manifest
    from partitions.store import open_store
    from tests.support import seaweed as sw
    from tests.support.pings import sim_table, simulator
    from tests.support.ray_cluster import start_cluster
    from tests.test_writer import write

    months = [f"2025-{m:02d}" for m in range(1, args.months + 1)]
    flows = active_flows(None)
    work = Path(tempfile.mkdtemp(prefix="fleetlake-bench-ray-"))
    seaweed = sw.start_seaweed()
    t0 = time.monotonic()
    cluster = start_cluster({"AWS_ACCESS_KEY_ID": sw.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": sw.SECRET_KEY},
                            cpus=args.cpus_per_node)
    print(f"ray cluster (head + worker node, {args.cpus_per_node} CPU each) up in {time.monotonic() - t0:.1f} s")
    try:
        s3 = sw.s3_options(seaweed.endpoint)
        url = f"s3://{sw.BUCKET}/bench-ray"
        store = open_store(url, s3)
        landed = work / "landed.duckdb"
        with Manifest(landed) as m:
            for i in range(args.fleets):
                fleet = f"fleet-{i}"
                table = sim_table(simulator(vehicles=args.vehicles, interval=args.interval, seed=i + 1), months,
                                  fleet_id=fleet)
                write(store, m, [table], work, fleet=fleet)
            pings = sum(p.rows for p in m.raw_partitions())
        windows = args.fleets * args.months * len(flows)
        print(f"{args.fleets} fleets x {args.months} months x {len(flows)} flows = {windows} windows, "
              f"{pings:,} pings")

        def one_pass(executor: str, n: int) -> float:
            path = work / f"pass-{executor}-{n}.duckdb"
            shutil.copy(landed, path)
            with Manifest(path) as m:
                t = time.monotonic()
                report = run_features(m, flows, url, s3, work / "cache", NOW_MS, 2 * args.cpus_per_node,
                                      executor=executor, ray_address=cluster.client_address)
                took = time.monotonic() - t
            assert len(report.results) == windows and not report.failed, [r.error for r in report.failed]
            return took

        one_pass("local", 0)  # warm-up: fingerprints, imports, the first real commits
        connects = []
        for _ in range(args.rounds):
            t = time.monotonic()
            RayBackend(cluster.client_address).close()
            connects.append(time.monotonic() - t)
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for n in range(1, args.rounds + 1):
            for executor in ("local", "ray"):
                times[executor].append(one_pass(executor, n))
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:5s}: median {med[k]:.1f} s per pass ({', '.join(f'{x:.1f}' for x in v)}), "
                  f"{windows / med[k]:.2f} windows/s")
        connect = statistics.median(connects)
        print(f"ray / local wall time: {med['ray'] / med['local']:.2f}x; Ray's cost per pass "
              f"{med['ray'] - med['local']:+.1f} s = connect and disconnect {connect:.1f} s (median of "
              f"{len(connects)}) + {1000 * (med['ray'] - med['local'] - connect) / windows:+.0f} ms per window")
    finally:
        cluster.stop()
        seaweed.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
