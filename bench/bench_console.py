"""Web console: the fleets page over a big book and a features page over 24 months, each against
the manifest query behind it, measured in the same run.

A manifest is filled with `--fleets` fleets x `--months` months ending with the open (current)
month: pings and events windows, the complete months pulled, a current succeeded run of every
active flow version and month (a few fleets lack their newest month's runs, or have a failed run
there, so the book's readiness has something to tell). One fleet also gets synthetic feature
tables (the active flows' own schemas, `--vehicles` trucks plus the fleet row) in a local store.
Pages are fetched through the real app (routing, session check, template, HTML) in-process; the
floor is the manifest query each page needs, on the same manifest:

  - fleets page   vs  the book queries: fleets x raw partitions, and every fleet's ready months
                      (one set-based query with the planner's notion of a current run; never a
                      plan per fleet)
  - features page vs  the fleet's latest succeeded runs (the page then reads those runs' Parquet files)
  - grid page     vs  the planner's query for that fleet (Reads.status plans the one fleet)

Medians of --rounds, and the ratio page / query.

    python bench/bench_console.py [--fleets 1000] [--months 24] [--vehicles 20] [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.fernet import Fernet
from pydantic import SecretStr

with warnings.catch_warnings():  # starlette's notice that its TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.engine.planner import active_inputs, plan  # noqa: E402
from ingest.flows.registry import active_flows  # noqa: E402
from ingest.runtime.app import build_app  # noqa: E402
from ingest.surfaces.api import create_app  # noqa: E402
from ingest.surfaces.console import book  # noqa: E402
from ingest.wiring.settings import load_settings  # noqa: E402
from partitions import Manifest  # noqa: E402
from partitions.manifest import FlowRun  # noqa: E402
from partitions.store import LocalStore  # noqa: E402

PASSWORD = "bench-" + uuid.uuid4().hex
STATES = ("TX", "OK", "NM", "LA", "AR", "CO", "KS", "--")


def _months(n: int, last: tuple[int, int]) -> list[str]:
    y, m = last
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return sorted(out)


def fill_book(manifest: Manifest, fleets: int, months: list[str]) -> None:
    """Fleets, their raw windows, pulled months and runs, written set-based (the manifest's own API
    commits one row at a time)."""
    c = manifest.conn
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    statuses = ["active"] * 90 + ["backfilling"] * 5 + ["failed"] * 3 + ["revoked"] * 2
    rng = random.Random(7)
    c.execute("BEGIN")
    c.executemany("INSERT INTO fleets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [[f"fleet-{i:05d}", "samsara" if i % 2 else "motive", rng.choice(statuses), now,
                    datetime.strptime(months[0], "%Y-%m"), None, now, now] for i in range(fleets)])
    c.execute("CREATE TEMP TABLE bench_months AS SELECT unnest(?::VARCHAR[]) AS month", [months])
    c.execute("""INSERT INTO raw_partitions
        SELECT f.fleet_id, d.dataset, m.month, 1, ['raw/' || d.dataset || '/' || f.fleet_id || '/' || m.month],
               (hash(f.fleet_id || m.month) % 500000)::BIGINT, 1000, md5(f.fleet_id || m.month), now()::TIMESTAMP, NULL
        FROM fleets f, bench_months m, (VALUES ('pings'), ('events')) d(dataset)""")
    c.execute("""INSERT INTO fleet_months SELECT f.fleet_id, m.month, now()::TIMESTAMP
                 FROM fleets f, bench_months m WHERE m.month < ?""", [months[-1]])
    c.execute("COMMIT")
    # One current run per window, as a feature pass leaves them, a day old: the planner's own answer
    # (what needs a run) becomes the runs. Every 20th fleet's newest complete month is left unrun,
    # every 50th has it failed: those fleets are not ready to quote.
    tasks = plan(manifest, active_flows())
    newest = months[-2]
    kept = [t for t in tasks if not (t.month == newest and int(t.fleet_id[-5:]) % 20 == 0)]
    day_ago = now - timedelta(days=1)
    table = pa.table({
        "run_id": [uuid.uuid4().hex for _ in kept], "flow": [t.flow for t in kept],
        "version": pa.array([t.version for t in kept], pa.int32()), "code_fp": [t.code_fp for t in kept],
        "fleet_id": [t.fleet_id for t in kept], "month": [t.month for t in kept],
        "input_fp": [t.input_fp for t in kept],
        "status": ["failed" if t.month == newest and int(t.fleet_id[-5:]) % 50 == 0 else "succeeded" for t in kept],
        "started_at": pa.array([day_ago] * len(kept), pa.timestamp("us"))})
    c.register("bench_runs", table)
    c.execute("""INSERT INTO flow_runs (run_id, flow, version, code_fp, fleet_id, month, input_fp, status, outputs,
                                        stats, error, started_at, finished_at)
                 SELECT run_id, flow, version, code_fp, fleet_id, month, input_fp, status, [], NULL, NULL,
                        started_at, started_at FROM bench_runs""")
    c.unregister("bench_runs")


def fill_features(manifest: Manifest, store: LocalStore, fleet_id: str, months: list[str], vehicles: int) -> None:
    rng = random.Random(11)
    started = datetime.now(timezone.utc)
    for flow in active_flows():
        for month in months:
            rows = []
            for v in [*(f"truck-{k:03d}" for k in range(vehicles)), None]:
                for state in (STATES if flow.name == "distance" else (None,)):
                    row: dict[str, object] = {}
                    for f in flow.schema:
                        row[f.name] = _value(f, rng, state)
                    row.update({"fleet_id": fleet_id, "month": month, "vehicle_id": v, "complete_month": True})
                    rows.append(row)
            key = f"features/{flow.name}/v{flow.version}/fleet={fleet_id}/month={month}/part-0.parquet"
            path = store.path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, flow.schema), path)
            manifest.record_run(FlowRun(uuid.uuid4().hex, flow.name, flow.version, "bench", fleet_id, month, "in",
                                        "succeeded", (key,), None, None, started, started))  # type: ignore[arg-type]


def _value(f: pa.Field, rng: random.Random, state: str | None) -> object:
    t = f.type
    if f.name == "state":
        return state
    if f.name == "radius_class":
        return rng.choice(["local", "intermediate", "long_haul"])
    if pa.types.is_floating(t):
        return rng.random() * 100
    if pa.types.is_integer(t):
        return rng.randrange(100)
    if pa.types.is_boolean(t):
        return rng.random() > 0.2
    if pa.types.is_timestamp(t):
        return datetime.now(timezone.utc)
    return "gps" if f.name.endswith("_source") else None


def median_s(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm: templates compiled, files cached by the OS
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleets", type=int, default=1000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--vehicles", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    today = datetime.now(timezone.utc)
    months = _months(args.months, (today.year, today.month))  # the last one is the open month
    with tempfile.TemporaryDirectory(prefix="fleetlake-bench-console-") as tmp:
        root = Path(tmp)
        settings = load_settings(data_dir=root, console_password=SecretStr(PASSWORD),
                                 token_key=SecretStr(Fernet.generate_key().decode()))
        store = LocalStore(root / "store")
        with Manifest(root / "manifest.duckdb") as manifest:
            t0 = time.perf_counter()
            fill_book(manifest, args.fleets, months)
            target = "fleet-00001"
            fill_features(manifest, store, target, months, args.vehicles)
            print(f"setup: {args.fleets} fleets x {args.months} months, features of {target} "
                  f"({args.vehicles} vehicles) in {time.perf_counter() - t0:.1f} s")
            app = build_app(settings, manifest, store, {}, active_flows())
            with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
                r = client.post("/ui/login", data={"password": PASSWORD, "next": "/"},
                                headers={"Origin": "http://127.0.0.1"}, follow_redirects=False)
                assert r.status_code == 303, r.text

                def fleets_page() -> None:
                    r = client.get("/")
                    assert r.status_code == 200 and r.text.count("<tr data-fleet=") == args.fleets

                def features_page() -> None:
                    r = client.get(f"/ui/fleets/{target}/features")
                    assert r.status_code == 200 and r.text.count('class="pt"') >= args.months

                def grid_page() -> None:
                    r = client.get(f"/ui/fleets/{target}")
                    assert r.status_code == 200 and r.text.count("<tr data-month=") == args.months

                now = datetime.now(timezone.utc)
                active = active_inputs(app.flows)

                def book_queries() -> None:
                    manifest.fleet_landings()
                    manifest.ready_months(active, months[-1])

                rows = [
                    ("fleets page (GET /)", median_s(fleets_page, args.rounds),
                     "book queries", median_s(book_queries, args.rounds)),
                    (f"features page ({args.months} months)", median_s(features_page, args.rounds),
                     "latest runs query", median_s(lambda: manifest.latest_runs(target, succeeded_only=True),
                                                   args.rounds)),
                    (f"fleet grid page ({args.months} months)", median_s(grid_page, args.rounds),
                     "plan query (that fleet)", median_s(lambda: plan(manifest, app.flows, target, check=False),
                                                         args.rounds)),
                ]
                book_rows = median_s(lambda: book.fleet_book(app.reads.book(), now), args.rounds)
        print(f"{'page':34} {'median':>9} {'floor':22} {'median':>9} {'ratio':>7}")
        for name, page_s, floor, floor_s in rows:
            print(f"{name:34} {page_s * 1000:7.1f}ms {floor:22} {floor_s * 1000:7.1f}ms {page_s / floor_s:6.1f}x")
        print(f"(book queries + typed rows: {book_rows * 1000:.1f} ms; target: fleets page under 1 s at 1,000 fleets)")


if __name__ == "__main__":
    main()
