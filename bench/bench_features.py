"""Feature flows: throughput and peak memory on one month of a 100-truck fleet, against a floor;
and the cost of a monthly refresh against the full two-year run.

Every measurement runs in a fresh child process, so its peak RSS is its own. Part 1 uses one
committed month (real MonthWriter output) of `--vehicles` trucks at `--interval` s pings:
  - floor:    read the flows' columns from the committed Parquet, one haversine pass over
              consecutive pings (the least any distance feature must do)
  - features: read the same file once and compute every active flow in one process
  - executor: the real planner + executor (one task per flow, `--workers` processes, each
              reading its own copy), as the daemon runs it
Part 2 lands `--lake-months` + 1 months of a smaller fleet, times the full feature run over the
first `--lake-months`, then the refresh after the last month lands, and prints the ratio.

    python bench/bench_features.py [--vehicles 100] [--interval 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MONTH = "2025-03"
NOW_MS = 1_900_000_000_000


def _land(work: Path, vehicles: int, interval: int, months: list[str], seed: int = 7) -> tuple[str, Path]:
    from partitions import Manifest, MonthWriter
    from partitions.store import LocalStore
    from sandbox.simulator import FleetSimulator, FleetSpec
    from tests.pings import sim_table

    sim = FleetSimulator(FleetSpec("bench-fleet", seed, vehicles, datetime(2024, 1, 1, tzinfo=timezone.utc),
                                   ping_interval_s=interval))
    store = LocalStore(work / "store")
    with Manifest(work / "manifest.duckdb") as m:
        for month in months:
            with MonthWriter(store, m, "bench-fleet", work_dir=work, memory_limit="4GB") as w:
                for k in range(0, vehicles, 10):  # ten trucks per batch keeps generation memory flat
                    w.add(sim_table(sim, [month], fleet_id="bench-fleet", vehicles=sim.vehicles[k:k + 10]))
                w.commit()
    return store.url, work / "manifest.duckdb"


def _child(mode: str, work: Path, workers: int) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from geo.distance import haversine_m
    from ingest.features import run_features
    from ingest.flows.base import FlowInput
    from ingest.flows.registry import active_flows
    from ingest.flows.track import COLUMNS
    from partitions import Manifest

    flows = active_flows()
    with Manifest(work / "manifest.duckdb", read_only=mode != "executor") as m:
        [part] = m.raw_partitions()
        files = [str(work / "store" / f) for f in part.files]
        rows = part.rows
        t0 = time.perf_counter()
        if mode == "floor":
            t = pq.read_table(files[0], columns=list(COLUMNS))
            lat, lon = t["lat"].to_numpy(), t["lon"].to_numpy()
            miles = float(haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]).sum())
            out = {"checksum": miles}
        elif mode == "features":
            t = pq.read_table(files[0], columns=list(COLUMNS))
            inp = FlowInput("bench-fleet", MONTH, {"pings": t}, True)
            per_flow = {}
            for f in flows:
                t1 = time.perf_counter()
                f.compute(inp)
                per_flow[f.name] = time.perf_counter() - t1
                per_flow[f.name + "_peak_mb"] = _peak_rss_mb()
            out = {"per_flow": per_flow}
        else:
            rep = run_features(m, flows, (work / "store").as_uri(), None, work / "cache", NOW_MS, workers)
            assert not rep.failed, [r.error for r in rep.failed]
            out = {"windows": len(rep.results)}
            # Let the next round run the same windows again.
            m.conn.execute("DELETE FROM flow_runs")
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "rss_mb": _peak_rss_mb(), **out, "np": np.__version__}


def _peak_rss_mb() -> float:
    """This process's own peak RSS. (ru_maxrss survives exec, so it would include the parent's.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(mode: str, work: Path, workers: int) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", mode, "--work", str(work), "--workers", str(workers)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _refresh_ratio(work: Path, vehicles: int, interval: int, months: int, workers: int) -> None:
    from ingest.features import run_features
    from ingest.flows.registry import active_flows
    from partitions import Manifest

    names = [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(months + 1)]
    t0 = time.perf_counter()
    url, manifest_path = _land(work, vehicles, interval, names[:-1])
    print(f"  landed {months} months of {vehicles} trucks at {interval} s in {time.perf_counter() - t0:.0f}s",
          flush=True)
    flows = active_flows()
    with Manifest(manifest_path) as m:
        t0 = time.perf_counter()
        full = run_features(m, flows, url, None, work / "cache", NOW_MS, workers)
        full_s = time.perf_counter() - t0
        pings = sum(p.rows for p in m.raw_partitions())
    _land_more(work, vehicles, interval, names[-1])
    with Manifest(manifest_path) as m:
        t0 = time.perf_counter()
        refresh = run_features(m, flows, url, None, work / "cache", NOW_MS, workers)
        refresh_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nothing = run_features(m, flows, url, None, work / "cache", NOW_MS, workers)
        nothing_s = time.perf_counter() - t0
    print(f"  full {months}-month run: {len(full.results)} windows over {pings:,} pings in {full_s:.1f}s")
    print(f"  refresh after month {months + 1}: {len(refresh.results)} windows in {refresh_s:.2f}s "
          f"= {refresh_s / full_s:.3f} of the full run (1/{months} would be {1 / months:.3f})")
    print(f"  no-change run: {len(nothing.results)} windows in {nothing_s * 1000:.0f} ms (planning only)")


def _land_more(work: Path, vehicles: int, interval: int, month: str) -> None:
    _land(work, vehicles, interval, [month])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=100)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lake-vehicles", type=int, default=10)
    ap.add_argument("--lake-interval", type=int, default=30)
    ap.add_argument("--lake-months", type=int, default=24)
    ap.add_argument("--child")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.work, args.workers)))
        return
    with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as d:
        work = Path(d)
        t0 = time.perf_counter()
        _land(work, args.vehicles, args.interval, [MONTH])
        print(f"Part 1: one month, {args.vehicles} trucks at {args.interval} s pings "
              f"(landed in {time.perf_counter() - t0:.0f}s); medians of {args.rounds} rounds", flush=True)
        results: dict[str, list[dict]] = {"floor": [], "features": [], "executor": []}
        for _ in range(args.rounds):
            for mode in results:
                results[mode].append(_run_child(mode, work, args.workers))
        rows = results["floor"][0]["rows"]
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        for k in results:
            rss = max(r["rss_mb"] for r in results[k])
            # Executor workers fork from a forkserver, not from this child, so their peak is not
            # visible here; each runs one flow on the whole month, like the "features" row.
            extra = " (parent only)" if k == "executor" else ""
            print(f"  {k:9s} {med[k]:7.2f}s  {rows / med[k] / 1e6:6.2f} M pings/s  {med[k] / med['floor']:5.1f}x floor"
                  f"  peak {rss:.0f} MB{extra}")
        per_flow = {f: statistics.median(r["per_flow"][f] for r in results["features"])
                    for f in results["features"][0]["per_flow"] if not f.endswith("_peak_mb")}
        print("  per flow (in-process, s): " + ", ".join(f"{k} {v:.2f}" for k, v in per_flow.items()))
        peaks = results["features"][0]["per_flow"]
        print("  peak RSS after each flow (MB, one process): "
              + ", ".join(f"{k} {peaks[k + '_peak_mb']:.0f}" for k in per_flow))
        print(f"  pings: {rows:,}")
    with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as d:
        print(f"Part 2: refresh vs full run ({args.lake_vehicles} trucks at {args.lake_interval} s)", flush=True)
        _refresh_ratio(Path(d), args.lake_vehicles, args.lake_interval, args.lake_months, args.workers)


if __name__ == "__main__":
    main()
