"""After `fleetlake demo` (a backfill and a refresh), every engine reads each table correctly.

On both backends: deltalake, polars and DuckDB (`fleetlake sql`'s views) over the Delta snapshot
give one row per (vehicle_id, ts) per month, equal to the manifest's counts; `fleetlake gc`
reclaims the refresh's superseded files, after which a plain listing of the Parquet files equals
the snapshots; and a manifest rebuilt from the Delta logs plans no work. Every example of the
README's lake section runs, as written, on the local demo store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable

from ingest.engine.planner import plan
from ingest.flows.registry import active_flows
from partitions import Manifest, layout, open_store
from partitions.delta import lake_for
from partitions.query import lake_connection
from tests.support import seaweed
from tests.support.readme import run_readme_examples


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "s3"])
def test_after_demo_and_refresh_every_reader_sees_each_ping_once_and_gc_leaves_only_the_snapshot(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "fleetlake-data")}
    s3 = None
    if backend == "s3":
        endpoint = request.getfixturevalue("seaweed_s3")
        env |= {"FLEETLAKE_STORE_URL": f"s3://{seaweed.BUCKET}/demo-{uuid.uuid4().hex[:10]}",
                "FLEETLAKE_S3_ENDPOINT_URL": endpoint, "FLEETLAKE_S3_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
                "FLEETLAKE_S3_SECRET_ACCESS_KEY": seaweed.SECRET_KEY, "FLEETLAKE_S3_REGION": "us-east-1"}
        s3 = seaweed.s3_options(endpoint)
    r = _cli(tmp_path, env, "demo", "--vehicles", "2", "--history-months", "2", "--ping-interval", "60")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "refresh" in r.stdout
    if backend == "file":  # the README's examples use the default ./fleetlake-data
        run_readme_examples(tmp_path, {k: v for k, v in env.items() if not k.startswith("FLEETLAKE_")})
    store = open_store(env.get("FLEETLAKE_STORE_URL", (tmp_path / "fleetlake-data" / "store").as_uri()), s3)
    lake = lake_for(store)
    manifest_path = tmp_path / "fleetlake-data" / "manifest.duckdb"
    with Manifest(manifest_path) as m:
        expected = {(p.dataset, p.fleet_id, p.month): p.rows for p in m.raw_partitions()}
        runs = {(r.flow, r.version, r.fleet_id, r.month): tuple(r.outputs)
                for r in m.latest_runs(succeeded_only=True)}
    assert {k[0] for k in expected} >= {"pings", "events"}
    key = {"pings": "(vehicle_id, ts)", "events": "(source, event_id)", "quarantine": "(vehicle_id, ts, reason)",
           "drivers": "(source, driver_id)", "assignments": "(vehicle_id, driver_id, start_ts)",
           "hos_logs": "(driver_id, start_ts, status, vehicle_id)", "hos_violations": "(driver_id, ts, kind)"}

    con = lake_connection(store)
    for dataset in {k[0] for k in expected}:
        want = {(f, mo): n for (d, f, mo), n in expected.items() if d == dataset}
        table = layout.raw_table(dataset)
        arrow = DeltaTable(lake.uri(table), storage_options=lake.storage_options).to_pyarrow_table()
        scratch = duckdb.connect()
        scratch.register("t", arrow)
        got = scratch.execute(f"SELECT fleet, month, count(*), count(DISTINCT {key[dataset]}) FROM t GROUP BY ALL"
                              ).fetchall()
        assert {(f, mo): n for f, mo, n, _ in got} == want, f"deltalake: {dataset}"
        assert all(n == distinct for *_, n, distinct in got), f"deltalake: a {dataset} row appears twice"
        polars = (pl.scan_delta(lake.uri(table), storage_options=lake.storage_options)
                  .group_by("fleet", "month").agg(pl.len()).collect())
        assert {(f, mo): n for f, mo, n in polars.iter_rows()} == want, f"polars: {dataset}"
        view = con.sql(f"SELECT fleet, month, count(*), count(DISTINCT {key[dataset]}) FROM {dataset} GROUP BY ALL"
                       ).fetchall()
        assert {(f, mo): n for f, mo, n, d in view if n == d} == want, f"duckdb view: {dataset}"

    # Feature tables: exactly the newest successful run's file per window.
    for flow in active_flows(None):
        live = lake.live_files(layout.feature_table(flow.name, flow.version))
        want = {(f, mo): out for (fl, v, f, mo), out in runs.items() if (fl, v) == (flow.name, flow.version)}
        assert {w: tuple(x.key for x in files) for w, files in live.items()} == want, flow.name
        rows = con.sql(f"SELECT count(*) FROM {layout.view_name(layout.feature_table(flow.name, flow.version))}"
                       ).fetchall()[0][0]
        assert rows == sum(x.rows for files in live.values() for x in files) > 0

    # The refresh replaced the month that was open: its old files are garbage now. (Data files only:
    # the Delta logs' checkpoints are Parquet too.)
    snapshot = {f.key for t in lake.tables() for files in lake.live_files(t).values() for f in files}
    parquet = {o.key for o in store.list("") if o.key.endswith(".parquet") and "/_delta_log/" not in o.key}
    assert snapshot < parquet
    dry = _cli(tmp_path, env, "gc", "--dry-run", "--retention-hours", "0")
    assert dry.returncode == 0, dry.stderr
    assert {o.key for o in store.list("") if o.key.endswith(".parquet") and "/_delta_log/" not in o.key} == parquet  # a dry run deletes nothing
    gc = _cli(tmp_path, env, "gc", "--retention-hours", "0")
    assert gc.returncode == 0, gc.stderr
    removed, freed = map(int, re.search(r"removed (\d+) files, (\d+) bytes", gc.stdout).groups())
    print(f"[{backend}] gc after the demo's refresh: {removed} files, {freed} bytes reclaimed")
    assert removed == len(parquet - snapshot) and freed > 0
    assert {o.key for o in store.list("") if o.key.endswith(".parquet") and "/_delta_log/" not in o.key} == snapshot

    # A manifest rebuilt from the Delta logs alone plans no work.
    manifest_path.unlink()
    rb = _cli(tmp_path, env, "manifest", "rebuild")
    assert rb.returncode == 0, rb.stdout + rb.stderr
    with Manifest(manifest_path) as m:
        assert {(p.dataset, p.fleet_id, p.month): p.rows for p in m.raw_partitions()} == expected
        assert plan(m, active_flows(None)) == []
