"""Feature flows: throughput and peak memory on one month of a 100-truck fleet, against a floor;
and the cost of a monthly refresh against the full two-year run.

Every measurement runs in a fresh child process, so its peak RSS is its own. Part 1 uses one
committed month (real MonthWriter output) of `--vehicles` trucks at `--interval` s pings:
  - floor:    read the flows' columns from the committed Parquet, one haversine pass over
              consecutive pings (the least any distance feature must do)
  - per_flow: the path before issue 15, in one process: each flow reads its own columns and
              computes its own groundwork, one after another (peak: the largest flow)
  - onepass:  the month task (ingest.engine.executor.run_month) in this process: the month read once,
              every active flow over shared groundwork, outputs written to the store
  - executor: the real planner + executor (one month task in a `--workers` pool), as the
              daemon runs it (peak: the parent only; the worker's is the onepass row)
`--data DIR` keeps the landed month there and reuses it (36 M pings take a long time to
simulate); `--modes` picks rows; the floor always runs, in the same rounds.
Part 2 lands `--lake-months` + 1 months of a smaller fleet, times the full feature run over the
first `--lake-months`, then the refresh after the last month lands, and prints the ratio.

    python bench/bench_features.py [--vehicles 100] [--interval 5] [--rounds 3] [--data DIR]
    python bench/bench_features.py --vehicles 474 --data /tmp/fl-36m --modes onepass --no-refresh  # ~36 M
"""

from __future__ import annotations

import argparse
import contextlib
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

from ingest.engine.executor import MonthSpec  # noqa: E402 - after the path above
from ingest.flows.base import Flow  # noqa: E402
from partitions import Manifest  # noqa: E402

MONTH = "2025-03"
NOW_MS = 1_900_000_000_000


def _land(work: Path, vehicles: int, interval: int, months: list[str], seed: int = 7) -> tuple[str, Path]:
    from partitions import Manifest, MonthWriter
    from partitions.store import LocalStore
    from sandbox.simulator import FleetSimulator, FleetSpec
    from tests.support.pings import sim_table

    sim = FleetSimulator(FleetSpec("bench-fleet", seed, vehicles, datetime(2024, 1, 1, tzinfo=timezone.utc),
                                   ping_interval_s=interval))
    store = LocalStore(work / "store")
    with Manifest(work / "manifest.duckdb") as m:
        for month in months:
            with MonthWriter(store, m, "bench-fleet", work_dir=work, memory_limit="4GB") as w:
                for k in range(0, vehicles, 10):  # ten trucks per batch keeps generation memory flat
                    w.add(sim_table(sim, [month], fleet_id="bench-fleet", vehicles=list(sim.vehicles[k:k + 10])))
                w.commit()
    return store.url, work / "manifest.duckdb"


def _child(mode: str, work: Path, workers: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geo.distance import haversine_m
    from ingest.engine.executor import run_month
    from ingest.engine.runs import run_features
    from ingest.flows import walk
    from ingest.flows.base import FlowInput
    from ingest.flows.registry import active_flows
    from ingest.flows.track import COLUMNS
    from partitions import Manifest

    flows = active_flows()
    with Manifest(work / "manifest.duckdb", read_only=mode not in ("executor", "onepass")) as m:
        [part] = m.raw_partitions()
        files = [str(work / "store" / f) for f in part.files]
        rows = part.rows
        t0, c0 = time.perf_counter(), _cpu_s()
        if mode == "floor":
            t = pq.read_table(files[0], columns=list(COLUMNS))
            lat, lon = t["lat"].to_numpy(), t["lon"].to_numpy()
            miles = float(haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]).sum())
            out: dict[str, object] = {"checksum": miles}
        elif mode == "per_flow":
            per_flow = {}
            for f in flows:
                c1 = _cpu_s()
                t = pa.concat_tables(pq.read_table(p, columns=list(f.columns) or None) for p in files)
                walk.compute(f, FlowInput("bench-fleet", MONTH, {"pings": t}, True))
                del t
                per_flow[f.name] = _cpu_s() - c1
                per_flow[f.name + "_peak_mb"] = _peak_rss_mb()
            out = {"per_flow": per_flow}
        elif mode == "onepass":
            spec = _month_spec(m, flows, work)  # planning is the daemon's, not the task's: not timed
            t0, c0 = time.perf_counter(), _cpu_s()
            outcomes = run_month(spec)
            # each outcome is (the window's run, its file): the run says whether it failed
            assert all(run.error is None for run, _ in outcomes), [run.error for run, _ in outcomes]
            out = {"windows": len(outcomes)}
        else:
            rep = run_features(m, flows, (work / "store").as_uri(), None, work / "cache", NOW_MS, workers)
            assert not rep.failed, [r.error for r in rep.failed]
            out = {"windows": len(rep.results)}
            # Let the next round run the same windows again.
            m.conn.execute("DELETE FROM flow_runs")
        seconds, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "rss_mb": _peak_rss_mb(), **out, "np": np.__version__}


def _month_spec(m: Manifest, flows: list[Flow], work: Path) -> MonthSpec:
    """The month task the executor would submit for the bench month (outputs go to a scratch store)."""
    import uuid

    from ingest.engine.executor import FlowJob
    from ingest.engine.planner import plan

    tasks = plan(m, flows)
    by_key = {(f.name, f.version): f for f in flows}
    jobs = tuple(FlowJob(t, by_key[(t.flow, t.version)].module, uuid.uuid4().hex) for t in tasks)
    scratch = work / "onepass-out"
    # Inputs are keys of the bench store; outputs land in a scratch store next to it.
    (scratch / "raw").mkdir(parents=True, exist_ok=True)
    for t in tasks:
        for _, keys in t.inputs:
            for k in keys:
                dst = scratch / k
                if not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.symlink_to(work / "store" / k)
    return MonthSpec("bench-fleet", MONTH, jobs, scratch.as_uri(), None, str(work / "cache"), True)


def _cpu_s() -> float:
    """This process's CPU seconds (all threads): on a shared, overloaded machine wall time mostly
    measures the neighbours, CPU time still measures the work."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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
    from ingest.engine.runs import run_features
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
    ap.add_argument("--modes", default="per_flow,onepass,executor", help="rows besides the floor")
    ap.add_argument("--data", type=Path, help="land the month here once and reuse it")
    ap.add_argument("--no-refresh", action="store_true", help="skip part 2")
    ap.add_argument("--child")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.work, args.workers)))
        return
    with contextlib.ExitStack() as stack:
        work = args.data or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetlake-bench-")))
        t0 = time.perf_counter()
        if not (work / "landed").exists():
            work.mkdir(parents=True, exist_ok=True)
            _land(work, args.vehicles, args.interval, [MONTH])
            (work / "landed").write_text(f"{args.vehicles} trucks at {args.interval} s\n")
        print(f"Part 1: one month, {(work / 'landed').read_text().strip()} "
              f"(landed or found in {time.perf_counter() - t0:.0f}s); medians of {args.rounds} rounds", flush=True)
        results: dict[str, list[dict]] = {k: [] for k in ["floor", *args.modes.split(",")]}
        for _ in range(args.rounds):
            for mode in results:
                results[mode].append(_run_child(mode, work, args.workers))
                r = results[mode][-1]
                print(f"    {mode}: {r['seconds']:.1f}s wall, {r['cpu']:.1f}s CPU, {r['rss_mb']:.0f} MB", flush=True)
        rows = results["floor"][0]["rows"]
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in results.items()}
        floor_rss = statistics.median(r["rss_mb"] for r in results["floor"])
        for k in results:
            rss = statistics.median(r["rss_mb"] for r in results[k])
            extra = " (parent only)" if k == "executor" else ""
            print(f"  {k:9s} {med[k]:7.2f}s wall ({med[k] / med['floor']:5.1f}x floor)  {cpu[k]:7.2f}s CPU "
                  f"({cpu[k] / cpu['floor']:5.1f}x floor, {rows / cpu[k] / 1e6:5.2f} M pings/CPU-s)  peak {rss:.0f} MB = {rss / floor_rss:.1f}x floor, {rss * 2**20 / rows:.0f} B/ping{extra}")
        if "per_flow" in results:
            per_flow = {f: statistics.median(r["per_flow"][f] for r in results["per_flow"])
                        for f in results["per_flow"][0]["per_flow"] if not f.endswith("_peak_mb")}
            print("  per flow (CPU s, own read + groundwork): " + ", ".join(f"{k} {v:.2f}" for k, v in per_flow.items()))
            peaks = results["per_flow"][0]["per_flow"]
            print("  peak RSS after each flow (MB, one process): "
                  + ", ".join(f"{k} {peaks[k + '_peak_mb']:.0f}" for k in per_flow))
        print(f"  pings: {rows:,}")
    if args.no_refresh:
        return
    with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as d:
        print(f"Part 2: refresh vs full run ({args.lake_vehicles} trucks at {args.lake_interval} s)", flush=True)
        _refresh_ratio(Path(d), args.lake_vehicles, args.lake_interval, args.lake_months, args.workers)


if __name__ == "__main__":
    main()
