"""Month-partition writing: rate, peak memory and late-data merge cost, against a floor.

Every measurement runs in a fresh child process, so its peak RSS is its own. The same rows
(simulated pings, several months, generated once and cached as Parquet) are used throughout.
Per round (medians over rounds):
  - floor:       pyarrow.parquet.write_table of all rows to one local file (zstd)
  - local write: MonthWriter over a file:// store, rows fed in batches, then commit
  - s3 write:    the same against a SeaweedFS S3 server on 127.0.0.1
  - late merge:  1% of one month's rows held back, then merged into the committed month;
                 compared with the floor time for that month's rows alone
  - month commit: the step that makes an uploaded month file visible, before and after the Delta
                 tables, same run, same files, both backends: "markers" = the old protocol's
                 JSON marker PUT; "delta" = one Delta commit replacing the window's files. Each
                 of --commits windows is committed, then replaced once; medians per commit, and
                 over the last quarter (the table's log then holds that many entries).

    python bench/bench_partitions.py [--vehicles 10] [--months 3] [--interval 5] [--rounds 3] [--commits 200]
    python bench/bench_partitions.py --only-commit      # just the month-commit comparison
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's tests/ helpers (SeaweedFS, data)
BATCH_ROWS = 200_000


def _child(mode: str, data: Path, work: Path, endpoint: str | None) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from partitions import Manifest, MonthWriter, open_store
    from tests.support.seaweed import BUCKET, s3_options

    table = pq.read_table(data)
    months = pc.strftime(table["ts"], format="%Y-%m")
    first = sorted(set(months.to_pylist()))[0]
    one_month = table.filter(pc.equal(months, first))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode in ("floor", "floor-month"):
        rows = table if mode == "floor" else one_month
        t0 = time.perf_counter()
        pq.write_table(rows, work / "floor.parquet", compression="zstd")
        return {"seconds": time.perf_counter() - t0, "rows": rows.num_rows, "rss0": rss0}
    url = (work / "store").as_uri() if mode != "s3" else f"s3://{BUCKET}/bench-{time.time_ns()}"
    store = open_store(url, s3_options(endpoint) if endpoint else None)
    with Manifest(work / "manifest.duckdb") as m:
        if mode == "late":
            late = pc.equal(pc.bit_wise_and(pc.cast(one_month["ts"], "int64"), 127 << 10), 0)  # ~1%
            with MonthWriter(store, m, "bench-fleet", work_dir=work) as w:
                w.add(one_month.filter(pc.invert(late)))
                w.commit()
            late_rows = one_month.filter(late)
            t0 = time.perf_counter()
            with MonthWriter(store, m, "bench-fleet", work_dir=work) as w:
                w.add(late_rows)
                res = w.commit()
            assert res[0].status == "committed"
            return {"seconds": time.perf_counter() - t0, "rows": late_rows.num_rows,
                    "month_rows": one_month.num_rows, "rss0": rss0}
        t0 = time.perf_counter()
        with MonthWriter(store, m, "bench-fleet", work_dir=work) as w:
            for off in range(0, table.num_rows, BATCH_ROWS):
                w.add(table.slice(off, BATCH_ROWS))
            w.commit()
        return {"seconds": time.perf_counter() - t0, "rows": table.num_rows, "rss0": rss0}


def _commit_costs(url: str, endpoint: str | None, windows: int, work: Path) -> dict[str, list[float]]:
    """Seconds per commit of `windows` months then one replacement each: marker PUT vs Delta commit."""
    import json as _json

    import pyarrow.parquet as pq

    from partitions import layout, open_store
    from partitions.delta import WINDOW_KEY, DataFile, lake_for
    from partitions.schema import PING_SCHEMA
    from tests.support.pings import sim_table, simulator
    from tests.support.seaweed import s3_options

    store = open_store(url, s3_options(endpoint) if endpoint else None)
    lake = lake_for(store)
    src = work / "month.parquet"
    t = sim_table(simulator(vehicles=1, interval=60, seed=3), ["2025-02"], fleet_id="bench-fleet")
    pq.write_table(t.select(PING_SCHEMA.names).cast(PING_SCHEMA).slice(0, 2000), src)
    size = src.stat().st_size
    months = [f"{y}-{m:02d}" for y in range(1990, 2200) for m in range(1, 13)][:windows]
    out: dict[str, list[float]] = {"markers": [], "delta": []}
    for rnd in (1, 2):  # 1: new windows, 2: each window replaced
        for month in months:
            key = layout.raw_file("pings", "bench-fleet", month, f"r{rnd}x{month.replace('-', '')}")
            store.put_file(key, src)  # the upload is the same in both protocols: not timed
            record = _json.dumps({"files": [key], "rows": 2000, "seq": rnd, "month": month})
            t0 = time.perf_counter()
            store.put(layout.raw_marker("pings", "bench-fleet", month, rnd), record.encode())
            out["markers"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lake.commit_window(layout.raw_table("pings"), PING_SCHEMA, "bench-fleet", month,
                               [DataFile(key, size, 2000)], {WINDOW_KEY: record})
            out["delta"].append(time.perf_counter() - t0)
    return out


def _report_commits(costs: dict[str, dict[str, list[float]]], windows: int) -> None:
    print(f"\nmonth commit (making an uploaded month visible), {windows} windows committed then replaced, "
          "medians per commit:")
    for backend, c in costs.items():
        m, d = statistics.median(c["markers"]), statistics.median(c["delta"])
        tail = len(c["delta"]) // 4
        dl = statistics.median(c["delta"][-tail:])
        print(f"  {backend:5s} before (marker PUT) {m * 1000:7.2f} ms   after (Delta commit) {d * 1000:7.2f} ms "
              f"= {d / m:5.1f}x   last quarter {dl * 1000:7.2f} ms (log of ~{len(c['delta']):,} entries)")


def _run(mode: str, data: Path, endpoint: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as work:
        cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--work", work]
        if endpoint:
            cmd += ["--endpoint", endpoint]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        result["peak_mb"] = result["peak_kb"] / 1024
        return result


def _make_data(vehicles: int, months: int, interval: int, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.support.pings import sim_table, simulator

    sim = simulator(vehicles=vehicles, interval=interval, seed=7)
    names = [f"2025-{m:02d}" for m in range(2, 2 + months)]
    t = pa.concat_tables(sim_table(sim, [m], fleet_id="bench-fleet") for m in names)
    pq.write_table(t, path)
    return t.num_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--commits", type=int, default=200, help="windows in the month-commit comparison")
    ap.add_argument("--only-commit", action="store_true", help="run only the month-commit comparison")
    ap.add_argument("--child")
    ap.add_argument("--data")
    ap.add_argument("--work")
    ap.add_argument("--endpoint")
    a = ap.parse_args()
    if a.child:
        r = _child(a.child, Path(a.data), Path(a.work), a.endpoint)
        r["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(r))
        return

    from tests.support.seaweed import BUCKET, start_seaweed

    if a.only_commit:
        seaweed = start_seaweed()
        try:
            with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as work:
                costs = {"local": _commit_costs((Path(work) / "store").as_uri(), None, a.commits, Path(work)),
                         "s3": _commit_costs(f"s3://{BUCKET}/commit-{time.time_ns()}", seaweed.endpoint, a.commits,
                                             Path(work))}
        finally:
            seaweed.stop()
        _report_commits(costs, a.commits)
        return
    cache = Path(tempfile.gettempdir()) / f"fleetlake-bench-{a.vehicles}v-{a.months}m-{a.interval}s.parquet"
    if not cache.exists():
        print(f"generating {a.vehicles} vehicles x {a.months} months at {a.interval} s ...", flush=True)
        _make_data(a.vehicles, a.months, a.interval, cache)
    seaweed = start_seaweed()
    try:
        res: dict[str, list[dict]] = {k: [] for k in ("floor", "local", "s3", "floor-month", "late")}
        for rnd in range(a.rounds):
            for mode in res:
                res[mode].append(_run(mode, cache, seaweed.endpoint if mode == "s3" else None))
            rows = res["floor"][-1]["rows"]
            line = "  ".join(f"{k} {v[-1]['seconds']:.2f}s/{v[-1]['peak_mb']:.0f}MB" for k, v in res.items())
            print(f"round {rnd + 1} ({rows:,} rows): {line}", flush=True)
        with tempfile.TemporaryDirectory(prefix="fleetlake-bench-") as work:
            costs = {"local": _commit_costs((Path(work) / "store").as_uri(), None, a.commits, Path(work)),
                     "s3": _commit_costs(f"s3://{BUCKET}/commit-{time.time_ns()}", seaweed.endpoint, a.commits,
                                         Path(work))}
    finally:
        seaweed.stop()
    med = lambda k, f: statistics.median(r[f] for r in res[k])  # noqa: E731
    rows = res["floor"][0]["rows"]
    base_mb = med("floor", "rss0") / 1024
    print(f"\nmedians over {a.rounds} rounds, {rows:,} pings ({a.vehicles} vehicles x {a.months} months at "
          f"{a.interval} s, batches of {BATCH_ROWS:,}):")
    floor = med("floor", "seconds")
    print(f"  floor  pq.write_table   {rows / floor:>12,.0f} pings/s   peak RSS {med('floor', 'peak_mb'):,.0f} MB "
          f"(table alone loaded: {base_mb:,.0f} MB)")
    for k in ("local", "s3"):
        s = med(k, "seconds")
        print(f"  {k:6s} MonthWriter      {rows / s:>12,.0f} pings/s   peak RSS {med(k, 'peak_mb'):,.0f} MB   "
              f"{s / floor:.2f}x the floor's time")
    late, fm = med("late", "seconds"), med("floor-month", "seconds")
    print(f"  late merge: {int(med('late', 'rows')):,} late pings into a committed month of "
          f"{int(med('late', 'month_rows')):,}: {late:.2f}s = {late / fm:.2f}x a plain write of that month "
          f"({fm:.2f}s)")
    _report_commits(costs, a.commits)


if __name__ == "__main__":
    main()
