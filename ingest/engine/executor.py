"""Run planned windows: pure tasks on a task backend (ingest/backend.py: a local process pool by
default, or a Ray cluster), recorded after their output commits.

A task covers one (fleet, month) and the windows the planner chose for it: a pure function of
(fleet, month, flow@versions, committed input files). It walks the month once, vehicle by
vehicle, running every planned flow over shared groundwork (ingest/flows/walk.py), writes one immutable file per window named
by its content under `features/<flow>/v<version>/fleet=<id>/month=<YYYY-MM>/`
(partitions.layout), and hands the files back. It shares no in-process state, so the same task runs on a Ray cluster too: there it gets no path
on the daemon's disk and no S3 keys (`worker_s3`), only the object store.
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
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from common.disk import is_disk_full
from common.errors import DiskFull
from common.months import month_bounds_ms
from common.states import RunStatus
from ingest.engine.backend import LocalPool, TaskBackend
from ingest.engine.isolation import IsolatedRunner
from ingest.engine.planner import WindowTask
from ingest.engine.windows import week_bounds_ms
from ingest.flows import walk
from ingest.flows.base import Flow, FlowInput
from partitions import layout
from partitions.delta import RUN_KEY, DataFile, lake_for
from partitions.manifest import FlowRun, Manifest
from partitions.reader import local_files
from partitions.store import ObjectStore, S3Options, open_store


@dataclass(frozen=True)
class FlowJob:
    """One planned window of a month task: the flow to run and the id its run will have."""
    task: WindowTask
    flow_module: str
    run_id: str


@dataclass(frozen=True)
class MonthSpec:
    """Everything a worker needs for one (fleet, month), picklable, no open handles."""
    fleet_id: str
    month: str
    jobs: tuple[FlowJob, ...]  # the planned windows of this fleet-month, one per flow version
    store_url: str
    s3: S3Options | None
    cache_dir: str | None  # None on a remote backend: a temp dir on the worker, never the daemon's disk
    complete: bool
    week: str = ""  # an ISO week's key when the jobs are a week's: both months' pings, filtered to it


DEADLINE_S = 900.0  # a plug-in's window task, when no settings say (FLEETLAKE_WINDOW_DEADLINE_S)

Done = tuple[FlowRun, DataFile | None]  # a window's run record and, when it succeeded, the file to commit


def run_month(spec: MonthSpec) -> list[Done]:
    """The pure month task (runs in a worker process): every planned flow of one fleet-month.

    One engine runs them all: the walk (ingest/flows/walk.py), in one stream over the month's
    vehicles, so the task holds one vehicle-month at a time and each vehicle's groundwork (track,
    pair distances, time zones) is computed once for every flow. Each flow sees exactly the
    columns it declares. A flow that raises fails its own window only; the others' files are
    written and handed back.
    """
    store = open_store(spec.store_url, spec.s3)
    began = datetime.now(timezone.utc)
    outcomes: dict[str, Done] = {}
    flows: dict[str, Flow] = {}
    for job in spec.jobs:
        try:
            flows[job.run_id] = _flow_of(job)
        except Exception as e:  # noqa: BLE001 - a flow that does not load fails its own window
            outcomes[job.run_id] = _failed(job, began, e)
    walking = [j for j in spec.jobs if j.run_id in flows and not flows[j.run_id].upstream]
    on_flows = [j for j in spec.jobs if j.run_id in flows and flows[j.run_id].upstream]
    with ExitStack() as scratch:  # no cache dir on a remote backend: a temp dir on the worker
        cache = Path(spec.cache_dir or scratch.enter_context(tempfile.TemporaryDirectory(prefix="fleetlake-in-")))
        if walking:
            outcomes.update(_walk_month(store, spec, walking, flows, cache, began))
        for job in on_flows:
            outcomes[job.run_id] = _on_flows(store, spec, job, flows[job.run_id], cache, began)
    return [outcomes[j.run_id] for j in spec.jobs]


def _run_of(job: FlowJob, began: datetime, status: RunStatus, file: DataFile | None = None,
            error: str | None = None) -> FlowRun:
    t = job.task
    return FlowRun(job.run_id, t.flow, t.version, t.code_fp, t.fleet_id, t.month, t.input_fp, status,
                   (file.key,) if file else (), {"rows": file.rows if file else 0}, error, began,
                   datetime.now(timezone.utc), t.window_key)


def _failed(job: FlowJob, began: datetime, e: BaseException) -> Done:
    return _run_of(job, began, RunStatus.FAILED, error=_error(e)), None


def _succeeded(job: FlowJob, began: datetime, file: DataFile) -> Done:
    return _run_of(job, began, RunStatus.SUCCEEDED, file), file


def _walk_month(store: ObjectStore, spec: MonthSpec, jobs: list[FlowJob], flows: dict[str, Flow],
                cache: Path, began: datetime) -> dict[str, Done]:
    """The walking flows of the month: pings streamed one vehicle at a time, other inputs (small) read whole."""
    files: dict[str, tuple[str, ...]] = {}
    for job in jobs:
        files.update(dict(job.task.inputs))
    try:
        paths = {d: [str(p) for p in local_files(store, list(keys), cache)] for d, keys in files.items()}
        others = {d: pa.concat_tables(pq.read_table(p) for p in ps) for d, ps in paths.items() if d != "pings" and ps}
    except Exception as e:  # noqa: BLE001 - an input that cannot be fetched or read fails each walking window
        return {j.run_id: _failed(j, began, e) for j in jobs}
    pings = paths.get("pings", [])

    def vehicles(columns: tuple[str, ...] | None) -> Iterator[pa.Table]:
        if not pings:
            return iter(())
        if spec.week:  # the one or two months' files, only the week's rows
            return walk.stream_between(pings, columns, *week_bounds_ms(spec.week))
        return walk.stream_by_vehicle(pings, columns)

    try:
        results = walk.run([flows[j.run_id] for j in jobs], spec.fleet_id, spec.week or spec.month, spec.complete,
                           vehicles, others)
    except Exception as e:  # noqa: BLE001 - the month's pings could not be walked: each walking window fails
        results = {(flows[j.run_id].name, flows[j.run_id].version): e for j in jobs}
    out = {}
    for job in jobs:
        flow = flows[job.run_id]
        result = results[(flow.name, flow.version)]
        try:
            if isinstance(result, Exception):
                raise result
            out[job.run_id] = _succeeded(job, began, _write_output(store, job, flow, result))
        except Exception as e:  # noqa: BLE001 - one flow's failure is its window's, not the month's
            out[job.run_id] = _failed(job, began, e)
    return out


def _on_flows(store: ObjectStore, spec: MonthSpec, job: FlowJob, flow: Flow, cache: Path, began: datetime) -> Done:
    """A flow on flows: its window's upstream outputs read whole (small feature tables), then the
    walk with no vehicles (the rows come from the flow's `fleet`)."""
    try:
        tables = {}
        for name, keys in job.task.inputs:
            paths = local_files(store, list(keys), cache)
            tables[name] = pa.concat_tables(pq.read_table(p) for p in paths) if paths else None
        result = on_flows(flow, FlowInput(spec.fleet_id, job.task.window_key,
                                          {k: t for k, t in tables.items() if t is not None}, spec.complete))
        return _succeeded(job, began, _write_output(store, job, flow, result))
    except Exception as e:  # noqa: BLE001 - one window's failure is its own
        return _failed(job, began, e)


def on_flows(flow: Flow, inp: FlowInput) -> pa.Table:
    """The walk of a flow on flows: no pings, so no vehicles; its rows come from `context` and `fleet`
    over the window's input tables (which have no vehicle order to split them by)."""
    ctx = flow.walk.context(inp) if flow.walk.context is not None else None
    return pa.Table.from_pylist(flow.walk.fleet(inp, ctx, []), flow.schema)


def _error(e: BaseException) -> str:
    if is_disk_full(e) and not isinstance(e, DiskFull):
        # Named, not pathed: the input cache is under the data dir, a task's output file in TMPDIR.
        e = DiskFull("FLEETLAKE_DATA_DIR or TMPDIR", "feature inputs cache or output temp file", None)
    return f"{type(e).__name__}: {e}"[:2000]


def _flow_of(job: FlowJob) -> Flow:
    """The flow version a job names, from the package that declares it (its VERSIONS)."""
    mod = importlib.import_module(job.flow_module)
    same_name = [f for f in getattr(mod, "VERSIONS", ()) if isinstance(f, Flow) and f.name == job.task.flow]
    for f in same_name:
        if f.version == job.task.version:
            return f
    if same_name:  # a version made from a declared one (dataclasses.replace) runs the package's code
        return replace(same_name[0], version=job.task.version)
    raise LookupError(f"{job.flow_module} declares no flow {job.task.flow}@{job.task.version}")


def _write_output(store: ObjectStore, job: FlowJob, flow: Flow, out: pa.Table) -> DataFile:
    t = job.task
    out = _fitted(flow, out)
    with tempfile.TemporaryDirectory(prefix="fleetlake-task-") as d:
        path = Path(d) / "out.parquet"
        pq.write_table(out, path, compression="zstd")
        digest = hashlib.blake2b(path.read_bytes(), digest_size=12).hexdigest()
        if flow.window == "week":  # weeks share their month's partition: a file names its week
            digest = t.window_key.replace("-", "") + digest
        key = layout.feature_file(t.flow, t.version, t.fleet_id, t.month, digest)
        store.put_file(key, path)
        size = path.stat().st_size
    return DataFile(key, size, out.num_rows)


class OutputSchemaError(ValueError):
    """A flow returned a table that does not fit its declared output schema."""


def _fitted(flow: Flow, out: object) -> pa.Table:
    """The flow's output in its schema's columns and types, or an error that says what does not fit."""
    if not isinstance(out, pa.Table):
        raise OutputSchemaError(f"flow {flow.key} returned {type(out).__name__}, not rows of its schema")
    missing = [n for n in flow.schema.names if n not in out.column_names]
    if missing:
        raise OutputSchemaError(f"flow {flow.key} returned rows without its schema's columns {', '.join(missing)}")
    try:
        return out.select(flow.schema.names).cast(flow.schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise OutputSchemaError(f"flow {flow.key} returned rows that do not fit its schema: {e}") from None


def commit_run(store: ObjectStore, flow: Flow, file: DataFile, run: FlowRun, complete: bool) -> bool:
    """Make a worker's file the window's content in the flow version's Delta table (parent only);
    False when it already is (the same content under the same name: nothing to commit)."""
    record = run.commit_record(complete, datetime.now(timezone.utc))
    commit = lake_for(store).commit_window
    if flow.window == "week":  # the week's file replaces the week's only, not its month's other weeks
        commit = partial(lake_for(store).replace_named, prefix=layout.part_name(run.window_key.replace("-", ""))[:-8])
    return commit(
        layout.feature_table(flow.name, flow.version), flow.schema, record["fleet_id"], record["month"], [file],
        {RUN_KEY: json.dumps(record, sort_keys=True), "fleetlake.run_id": record["run_id"],
         "fleetlake.input_fp": record["input_fp"], "fleetlake.code_fp": record["code_fp"]})


def worker_s3(s3: S3Options | None) -> S3Options | None:
    """What a remote worker is told about S3: endpoint and region, never the daemon's keys (it has its own)."""
    return None if s3 is None else replace(s3, access_key_id=None, secret_access_key=None)


def execute(manifest: Manifest, tasks: list[WindowTask], flows: list[Flow], store_url: str,
            s3: S3Options | None, cache_dir: Path, now_ms: int, workers: int = 2,
            backend: TaskBackend | None = None, deadline_s: float = DEADLINE_S) -> list[FlowRun]:
    """Run the tasks on `backend` (default: a local pool of `workers` processes); commit and record each.

    On a local backend, plug-in flows (any not in ingest.flows) run apart from the built-ins, each
    window task in a process of its own stopped after `deadline_s` (ingest/engine/isolation.py)."""
    by_key = {(f.name, f.version): f for f in flows}
    results: list[FlowRun] = []
    if not tasks:
        return results
    store = open_store(store_url, s3)
    months: dict[tuple[str, str, str, str], list[FlowJob]] = {}
    for t in tasks:  # one task per (fleet, window): the month is read and its groundwork computed once
        flow = by_key[(t.flow, t.version)]  # ... and a task of its own for each plug-in window
        months.setdefault((t.fleet_id, t.window_key, t.month, flow.key if is_plugin(flow) else ""), []).append(
            FlowJob(t, flow.module, uuid.uuid4().hex))
    with ExitStack() as closing:
        if backend is None:
            backend = LocalPool(workers, [__name__, *sorted({f.module for f in flows if not is_plugin(f)})])
            closing.callback(backend.close)
        apart: TaskBackend = backend
        if not backend.remote and any(plugin for *_, plugin in months):
            apart = IsolatedRunner(workers, deadline_s)
            closing.callback(apart.close)
        task_s3, task_cache = (worker_s3(s3), None) if backend.remote else (s3, str(cache_dir))
        futures = []
        for (fleet_id, _key, month, plugin), jobs in months.items():
            week = _key if "-W" in _key else ""
            spec = MonthSpec(fleet_id, month, tuple(jobs), store_url, task_s3, task_cache,
                             (week_bounds_ms(week) if week else month_bounds_ms(month))[1] <= now_ms, week)
            futures.append((spec, datetime.now(timezone.utc), (apart if plugin else backend).submit(run_month, spec)))
        for spec, began, fut in futures:
            try:
                done = fut.result()
            except Exception as e:  # noqa: BLE001 - the month could not be read: each of its windows fails
                done = [_failed(j, began, e) for j in spec.jobs]
            for run, file in done:
                results.append(_record(manifest, store, by_key[(run.flow, run.version)], run, file, spec.complete))
    return results


def is_plugin(flow: Flow) -> bool:
    """A flow from an installed plug-in (or a test's), not one of fleetlake's own packages."""
    return not flow.module.startswith("ingest.flows.")


def _record(manifest: Manifest, store: ObjectStore, flow: Flow, run: FlowRun, file: DataFile | None,
            complete: bool) -> FlowRun:
    """Commit one window's file (parent only), then record its run, succeeded or failed. A run whose
    output is the window's live content already (a re-run on request of unchanged inputs and code)
    commits nothing and says so in its stats (`same_content`)."""
    if run.status is RunStatus.SUCCEEDED and file is not None:
        try:
            if not commit_run(store, flow, file, run, complete):
                run = replace(run, stats={**(run.stats or {}), "same_content": True})
        except Exception as e:  # noqa: BLE001 - a failed window is recorded, the others go on
            run = replace(run, status=RunStatus.FAILED, outputs=(), stats={"rows": 0}, error=_error(e))
    run = replace(run, finished_at=datetime.now(timezone.utc))
    manifest.record_run(run)
    return run
