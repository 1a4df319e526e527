"""Run planned windows: pure tasks on a task backend (ingest/backend.py: a local process pool by
default, or a Ray cluster), recorded after their output commits.

A task is a pure function of (fleet, flow@version, month, committed input files): it reads the
inputs, computes the table and writes one immutable file named by its content under
`features/<flow>/v<version>/fleet=<id>/month=<YYYY-MM>/` (partitions.layout), and hands the file
back. It shares no in-process state, so the same task runs on a Ray cluster too: there it
gets no path on the daemon's disk and no S3 keys (`worker_s3`), only the object store.
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
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.months import month_bounds_ms
from common.states import RunStatus
from ingest.backend import LocalPool, TaskBackend
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
    cache_dir: str | None  # None on a remote backend: a temp dir on the worker, never the daemon's disk
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
    with ExitStack() as scratch:
        cache = Path(spec.cache_dir or scratch.enter_context(tempfile.TemporaryDirectory(prefix="fleetlake-in-")))
        for dataset, files in t.inputs:
            paths = local_files(store, list(files), cache)
            tables[dataset] = pa.concat_tables(pq.read_table(p, columns=list(flow.columns) or None)
                                               for p in paths)
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


def worker_s3(s3: S3Options | None) -> S3Options | None:
    """What a remote worker is told about S3: endpoint and region, never the daemon's keys (it has its own)."""
    return None if s3 is None else replace(s3, access_key_id=None, secret_access_key=None)


def execute(manifest: Manifest, tasks: list[WindowTask], flows: list[Flow], store_url: str,
            s3: S3Options | None, cache_dir: Path, now_ms: int, workers: int = 2,
            backend: TaskBackend | None = None) -> list[RunResult]:
    """Run the tasks on `backend` (default: a local pool of `workers` processes); commit and record each."""
    by_key = {(f.name, f.version): f for f in flows}
    results: list[RunResult] = []
    if not tasks:
        return results
    store = open_store(store_url, s3)
    with ExitStack() as closing:
        if backend is None:
            backend = LocalPool(workers, [__name__, *sorted({f.module for f in flows})])
            closing.callback(backend.close)
        task_s3, task_cache = (worker_s3(s3), None) if backend.remote else (s3, str(cache_dir))
        started = {}
        futures = []
        for t in tasks:
            spec = TaskSpec(t, by_key[(t.flow, t.version)].module, store_url, task_s3, task_cache,
                            month_bounds_ms(t.month)[1] <= now_ms, uuid.uuid4().hex)
            started[spec.run_id] = (datetime.now(timezone.utc), time.monotonic())
            futures.append((spec, backend.submit(run_task, spec)))
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
