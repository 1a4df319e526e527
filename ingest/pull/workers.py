"""Where pull slices run: threads of the daemon, worker processes (the default) or a Ray cluster.

FLEETLAKE_PULL_EXECUTOR picks one; all share one interface (`submit(task) -> Future[SliceResult]`)
and the daemon keeps what needs one owner: token refresh, the one committer and the manifest.

- `thread`: a thread pool in the daemon (one GIL: the decode and spool of every fleet share it).
- `process`: FLEETLAKE_PULL_WORKERS processes (default one per core), forked from a clean
  forkserver with the pull modules preloaded (the daemon has threads: forking it could copy a
  held lock). Each process runs FLEETLAKE_PULL_WORKER_THREADS slices at once, since a slice
  mostly waits on its TSP's rate limit; by default enough that every fleet in flight can run all
  its lanes (`default_threads`). A worker that dies (OOM, SIGKILL) is replaced and the
  slices it held are resubmitted to the others, bounded by MAX_RESUBMITS per slice so a slice
  that kills its worker every time fails the fleet instead.
- `ray`: tasks on a Ray cluster (ingest.engine.ray_backend, handed in by the runtime), which
  retries a task whose worker died. Ray workers share no disk with the daemon: their spool comes back as bytes.

Local workers (threads, processes) also take `CompactTask`s: the sort of a completed month's parts
into one file (partitions.writer.compact_parts), so the daemon, whose Python threads share one GIL
for every fleet, only uploads and commits the file. A worker killed mid-sort is replaced and the
task resubmitted like a slice; nothing is committed before the file is whole.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Callable, Protocol

from common.errors import ConfigError
from ingest.pull.slices import SliceFailure, SliceResult, SliceTask, run_slice
from ingest.wiring.forkserver import forkserver_context
from partitions.writer import compact_parts

PULL_EXECUTORS = ("thread", "process", "ray")
MAX_RESUBMITS = 3


@dataclass(frozen=True)
class CompactTask:
    """Sort a completed month's parts (local files) into `out` (partitions.writer.compact_parts)."""
    parts: tuple[str, ...]
    out: str
    memory_limit: str
    name: str = field(default_factory=lambda: f"compact-{uuid.uuid4().hex}")


Task = SliceTask | CompactTask


def run_task(task: Task) -> SliceResult:
    """Run a slice or a compaction; never raises (a failure is part of the result, as run_slice's)."""
    if isinstance(task, SliceTask):
        return run_slice(task)
    t0 = time.thread_time()
    try:
        compact_parts([Path(p) for p in task.parts], Path(task.out), task.memory_limit)
    except BaseException as e:  # noqa: BLE001 - handed to the daemon, which raises it there
        return SliceResult(task.name, None, 0, failure=SliceFailure.of(e))
    return SliceResult(task.name, None, 0, cpu_s=time.thread_time() - t0, worker_pid=os.getpid())


def compact_in(workers: PullWorkers, memory_limit: str) -> Callable[[list[Path], Path], None]:
    """A MonthWriter's compactor that sorts in `workers` (local ones: the parts are files on this disk)."""
    if workers.remote:
        raise ValueError(f"{workers.kind} pull workers share no disk with the daemon: compact in it")

    def compact(parts: list[Path], out: Path) -> None:
        r = workers.compact(CompactTask(tuple(str(p) for p in parts), str(out), memory_limit)).result()
        if r.failure is not None:
            raise r.failure.exception()

    return compact


MAX_THREADS = 64
SLICE_LANES = 4  # a fleet's slices in flight (ingest.pull.backfill.PullOptions.workers)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def default_threads(fleets: int, workers: int, lanes: int) -> int:
    """Slices each worker runs at once, so that `fleets` fleets in flight can all run their `lanes`.

    A slice spends most of its time asleep on its own token's rate, so a slot too few is not CPU
    saved: it is a fleet waiting for another fleet's sleep. With a fixed 4 per worker, 16 rate-bound
    fleets on 2 workers had 8 slots for 64 lanes and took 17.8 s where the same run with enough
    slots took 10.9 s (bench_scale --targets; docs/scale.md). At least 4 (the old default), at
    most MAX_THREADS per process.
    """
    return min(MAX_THREADS, max(4, -(-max(1, fleets) * max(1, lanes) // max(1, workers))))


class PullWorkers(Protocol):
    kind: str
    remote: bool    # workers on other machines: no spool directory on the daemon's disk
    slots: int      # slices that can run at once

    def submit(self, task: SliceTask) -> Future[SliceResult]: ...
    def compact(self, task: CompactTask) -> Future[SliceResult]: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...


class ThreadWorkers:
    kind, remote = "thread", False

    def __init__(self, workers: int, threads: int) -> None:
        self.slots = max(1, workers) * max(1, threads)
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="pull-slice")

    def submit(self, task: SliceTask) -> Future[SliceResult]:
        return self._pool.submit(run_slice, task)

    def compact(self, task: CompactTask) -> Future[SliceResult]:
        return self._pool.submit(run_task, task)

    def restart(self) -> None:
        pass  # threads do not die alone

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProcessWorkers:
    """Worker processes, each running up to `threads` slices at once, on a pipe of its own.

    Not a ProcessPoolExecutor: that runs one call per process at a time, and a worker that dies
    breaks the whole pool. Here each process has its own duplex pipe (no lock shared between
    processes, so a SIGKILL mid-send cannot wedge the others); the daemon side knows which slices
    each process holds, and when one dies (its pipe ends) it starts a replacement and hands that
    process's slices to the living ones.
    """

    kind, remote = "process", False

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = max(1, workers)
        self.threads = max(1, threads)
        self.slots = self.workers * self.threads
        self.restarts = 0
        self._ctx = forkserver_context(["ingest.pull.slices"])
        self._lock = threading.Lock()
        self._closed = False
        self._procs: list[_Proc] = []
        self._queue: list[tuple[Task, Future[SliceResult], int]] = []  # waiting for a free slot
        for _ in range(self.workers):
            self._procs.append(self._spawn())

    def _spawn(self) -> _Proc:
        ours, theirs = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_serve, args=(theirs, self.threads), daemon=True, name="fleetlake-pull")
        proc.start()
        theirs.close()
        p = _Proc(proc, ours)
        threading.Thread(target=self._read, args=(p,), daemon=True, name=f"pull-worker-{proc.pid}").start()
        return p

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.proc.pid for p in self._procs if p.proc.pid is not None]

    @property
    def busy_pids(self) -> list[int]:
        """Processes holding a slice right now (the crash test kills one of them)."""
        with self._lock:
            return [p.proc.pid for p in self._procs if p.held and not p.dead and p.proc.pid is not None]

    def submit(self, task: Task, first: bool = False) -> Future[SliceResult]:
        out: Future[SliceResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pull workers are closed")
            self._queue.insert(0 if first else len(self._queue), (task, out, 0))
            self._dispatch()
        return out

    def compact(self, task: CompactTask) -> Future[SliceResult]:
        # A slot like a slice's (resubmitted the same way if its process dies), but ahead of the
        # waiting slices: a fleet's commit waits on it, and behind a queue of other fleets' slices
        # a healthy pull went 10 s without progress under load (tests/test_stuck.py).
        return self.submit(task, first=True)

    def _dispatch(self) -> None:
        """Hand waiting slices to the least busy living processes (under the lock)."""
        while self._queue:
            live = [p for p in self._procs if not p.dead and len(p.held) < self.threads]
            if not live:
                return
            p = min(live, key=lambda q: len(q.held))
            task, fut, tries = self._queue.pop(0)
            if fut.cancelled():
                continue
            p.held[task.name] = (task, fut, tries)
            try:
                p.conn.send(task)
            except (OSError, EOFError):
                p.dead = True  # the reader thread requeues what it held

    def _read(self, p: _Proc) -> None:
        while True:
            try:
                result: SliceResult = p.conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                held = p.held.pop(result.task_name, None)
                self._dispatch()
            if held is not None and not held[1].done():
                held[1].set_result(result)
        self._lost(p)

    def _lost(self, p: _Proc) -> None:
        """A process ended: requeue its slices (bounded), replace it unless we are closing."""
        p.proc.join(timeout=5)
        failed: list[Future[SliceResult]] = []
        with self._lock:
            p.dead = True
            if self._closed:
                return
            for task, fut, tries in p.held.values():
                if tries >= MAX_RESUBMITS:
                    failed.append(fut)
                else:
                    self._queue.insert(0, (task, fut, tries + 1))
            p.held.clear()
            self._procs = [q for q in self._procs if q is not p]
            self._procs.append(self._spawn())
            self.restarts += 1
            self._dispatch()
        for fut in failed:
            if not fut.done():
                fut.set_exception(BrokenProcessPool(f"a pull worker died {MAX_RESUBMITS + 1} times on one slice"))

    def restart(self) -> None:
        pass  # a dead process is replaced and its slices resubmitted as soon as its pipe ends

    def close(self) -> None:
        with self._lock:
            self._closed = True
            procs = list(self._procs)
            pending = [f for _, f, _ in self._queue] + [f for p in procs for _, f, _ in p.held.values()]
            self._queue.clear()
        for p in procs:
            try:
                p.conn.send(None)
            except (OSError, EOFError):
                pass
        for p in procs:
            p.proc.join(timeout=30)
            if p.proc.is_alive():
                p.proc.terminate()
                p.proc.join(timeout=5)
            p.conn.close()
        for f in pending:
            f.cancel()


@dataclass
class _Proc:
    proc: BaseProcess
    conn: Connection
    held: dict[str, tuple[Task, Future[SliceResult], int]] = field(default_factory=dict)
    dead: bool = False


def _serve(conn: Connection, threads: int) -> None:
    """A worker process: run the slices its pipe brings on `threads` threads, send each result back."""
    send = threading.Lock()

    def one(task: Task) -> None:
        result = run_task(task)
        with send:
            conn.send(result)

    with ThreadPoolExecutor(threads, thread_name_prefix="slice") as pool:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                break  # the daemon is gone
            if task is None:
                break
            pool.submit(one, task)


class TaskSubmitter(Protocol):
    """A Ray backend (ingest.engine.ray_backend.RayBackend, handed in by the runtime: the pull imports no engine)."""

    def submit(self, fn: Callable[[SliceTask], SliceResult], arg: SliceTask) -> Future[SliceResult]: ...
    def close(self) -> None: ...


class RayWorkers:
    kind, remote = "ray", True

    def __init__(self, backend: TaskSubmitter, slots: int) -> None:
        self._backend = backend
        self.slots = max(1, slots)

    def submit(self, task: SliceTask) -> Future[SliceResult]:
        return self._backend.submit(run_slice, task)

    def compact(self, task: CompactTask) -> Future[SliceResult]:
        raise ValueError("Ray pull workers share no disk with the daemon: compact in it")

    def restart(self) -> None:
        pass  # Ray resubmits a task whose worker or node died

    def close(self) -> None:
        self._backend.close()


def open_pull_workers(executor: str, workers: int | None = None, threads: int | None = None,
                      ray_address: str | None = None,
                      ray: Callable[[str], TaskSubmitter] | None = None, *, fleets: int = 8,
                      lanes: int = SLICE_LANES) -> PullWorkers:
    """The pull workers FLEETLAKE_PULL_EXECUTOR names (workers None: one per core; threads None:
    enough slots for `fleets` fleets in flight with `lanes` slices each, `default_threads`)."""
    n = workers or default_workers()
    threads = threads or default_threads(fleets, n, lanes)
    if executor == "thread":
        return ThreadWorkers(n, threads)
    if executor == "process":
        return ProcessWorkers(n, threads)
    if executor == "ray":
        if not ray_address:
            raise ConfigError("FLEETLAKE_RAY_ADDRESS", "FLEETLAKE_PULL_EXECUTOR=ray needs the cluster's address")
        if ray is None:
            raise ConfigError("FLEETLAKE_PULL_EXECUTOR", "ray pulls need the runtime's Ray backend")
        return RayWorkers(ray(ray_address), n * threads)
    raise ConfigError("FLEETLAKE_PULL_EXECUTOR", f"must be one of {', '.join(PULL_EXECUTORS)}")
