"""Run planned windows: pure tasks in a bounded process pool, recorded after their output commits.

A task is a pure function of (fleet, flow@version, month, committed input files): it reads the
inputs, computes the table and writes one immutable file named by its content under
`features/<flow>/v<version>/fleet=<id>/month=<YYYY-MM>/` (partitions.layout), and hands the file
back. It shares no in-process state, so the same task can later run on a distributed engine.
The parent, the one process that owns the manifest and so the only writer of every Delta table,
commits the file to the flow version's table (replacing the window's previous file, the run in
the commit's metadata), then records the run in the manifest. A file a worker wrote but the parent
never committed is invisible and vacuumed later. A failing window is recorded with its error and
planned again next time, without blocking the others.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.months import month_bounds_ms
from common.states import RunStatus
from ingest.flows.base import Flow, FlowInput
from ingest.planner import WindowTask
from partitions import layout
from partitions.delta import RUN_KEY, DataFile, lake_for
from partitions.manifest import FlowRun, Manifest
from partitions.reader import local_files
from partitions.store import ObjectStore, S3Options, open_store


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs, picklable, no open handles."""
    task: WindowTask
    flow_module: str
    store_url: str
    s3: S3Options | None
    cache_dir: str
    complete: bool
    run_id: str


@dataclass(frozen=True)
class RunResult:
    task: WindowTask
    run_id: str
    status: RunStatus
    outputs: tuple[str, ...]
    rows: int
    seconds: float
    error: str | None


def run_task(spec: TaskSpec) -> tuple[DataFile, dict[str, Any]]:
    """The pure window task (runs in a worker process): the written file and the run's record."""
    t = spec.task
    flow: Flow = importlib.import_module(spec.flow_module).FLOW
    store = open_store(spec.store_url, spec.s3)
    tables = {}
    for dataset, files in t.inputs:
        paths = local_files(store, list(files), Path(spec.cache_dir))
        tables[dataset] = pa.concat_tables(pq.read_table(p, columns=list(flow.columns) or None) for p in paths)
    out = flow.compute(FlowInput(t.fleet_id, t.month, tables, spec.complete))
    out = out.select(flow.schema.names).cast(flow.schema)
    with tempfile.TemporaryDirectory(prefix="fleetlake-task-") as d:
        path = Path(d) / "out.parquet"
        pq.write_table(out, path, compression="zstd")
        digest = hashlib.blake2b(path.read_bytes(), digest_size=12).hexdigest()
        key = layout.feature_file(t.flow, t.version, t.fleet_id, t.month, digest)
        store.put_file(key, path)
        size = path.stat().st_size
    record = {"run_id": spec.run_id, "flow": t.flow, "version": t.version, "code_fp": t.code_fp,
              "fleet_id": t.fleet_id, "month": t.month, "input_fp": t.input_fp, "outputs": [key],
              "rows": out.num_rows, "complete_month": spec.complete}
    return DataFile(key, size, out.num_rows), record


def commit_run(store: ObjectStore, flow: Flow, file: DataFile, record: dict[str, Any]) -> None:
    """Make a worker's file the window's content in the flow version's Delta table (parent only)."""
    record = {**record, "committed_at": datetime.now(timezone.utc).isoformat()}
    lake_for(store).commit_window(
        layout.feature_table(flow.name, flow.version), flow.schema, record["fleet_id"], record["month"], [file],
        {RUN_KEY: json.dumps(record, sort_keys=True), "fleetlake.run_id": record["run_id"],
         "fleetlake.input_fp": record["input_fp"], "fleetlake.code_fp": record["code_fp"]})


def _pool_context(flow_modules: list[str]) -> multiprocessing.context.BaseContext:
    """Workers forked from a clean, single-threaded server process, not from us.

    The daemon has threads (HTTP, scheduler, work); forking it could copy a lock some other
    thread holds at that instant and hang the child. A forkserver is started once, with the
    executor and the planned flows preloaded (with all they import), so workers still start in
    milliseconds.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, *flow_modules])
    return ctx


def execute(manifest: Manifest, tasks: list[WindowTask], flows: list[Flow], store_url: str,
            s3: S3Options | None, cache_dir: Path, now_ms: int, workers: int = 2) -> list[RunResult]:
    by_key = {(f.name, f.version): f for f in flows}
    results: list[RunResult] = []
    if not tasks:
        return results
    store = open_store(store_url, s3)
    context = _pool_context(sorted({f.module for f in flows}))
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        started = {}
        futures = []
        for t in tasks:
            spec = TaskSpec(t, by_key[(t.flow, t.version)].module, store_url, s3, str(cache_dir),
                            month_bounds_ms(t.month)[1] <= now_ms, uuid.uuid4().hex)
            started[spec.run_id] = (datetime.now(timezone.utc), time.monotonic())
            futures.append((spec, pool.submit(run_task, spec)))
        for spec, fut in futures:
            t = spec.task
            outputs: tuple[str, ...]
            try:
                file, record = fut.result()
                commit_run(store, by_key[(t.flow, t.version)], file, record)
                outputs, rows = (file.key,), file.rows
                status, error = RunStatus.SUCCEEDED, None
            except Exception as e:  # noqa: BLE001 - a failed window is recorded, the others go on
                outputs, rows, status = (), 0, RunStatus.FAILED
                error = f"{type(e).__name__}: {e}"[:2000]
            began, t0 = started[spec.run_id]
            manifest.record_run(FlowRun(spec.run_id, t.flow, t.version, t.code_fp, t.fleet_id, t.month, t.input_fp,
                                        status, tuple(outputs), {"rows": rows}, error, began,
                                        datetime.now(timezone.utc)))
            results.append(RunResult(t, spec.run_id, status, tuple(outputs), rows, time.monotonic() - t0, error))
    return results
