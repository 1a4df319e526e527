"""Where pure tasks run: a local process pool (the default) or a Ray cluster, behind one small interface.

A task is a top-level function and one picklable argument; a backend runs it somewhere and
hands back a `concurrent.futures.Future` holding its result or the exception it raised. The
executor neither knows nor cares which backend it has, except for one fact, `remote`:

- local (`LocalPool`): worker processes on the daemon's machine. They may use its disk (the
  input cache) and get the store options as the daemon has them.
- remote (`ingest.engine.ray_backend.RayBackend`): workers on other machines. They get no path on the
  daemon's disk and no S3 secret: they read and write only the object store, with the
  credentials of their own environment (see docs/ray.md).

Either way the workers only *write files*; the daemon commits them (one writer per table).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Protocol, TypeVar

from common.errors import ConfigError
from ingest.wiring.forkserver import exit_with, forkserver_context

A = TypeVar("A")
R = TypeVar("R")

EXECUTORS = ("local", "ray")


class TaskBackend(Protocol):
    remote: bool  # workers on other machines: no daemon paths, no daemon secrets

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R]: ...
    def close(self) -> None: ...


class LocalPool:
    """A process pool whose workers are forked from a clean, single-threaded server process, not from us.

    The daemon has threads (HTTP, scheduler, work); forking it could copy a lock some other
    thread holds at that instant and hang the child. A forkserver is started once, with the
    modules the tasks need preloaded (with all they import), so workers still start in
    milliseconds.
    """

    remote = False

    def __init__(self, workers: int, preload: list[str]) -> None:
        ctx = forkserver_context(preload)
        self._pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx, initializer=exit_with,
                                         initargs=(os.getpid(),))

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R]:
        return self._pool.submit(fn, arg)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def open_backend(executor: str, workers: int, preload: list[str], ray_address: str | None = None) -> TaskBackend:
    """The backend the settings name (FLEETLAKE_EXECUTOR); Ray is imported only when asked for."""
    if executor == "local":
        return LocalPool(workers, preload)
    if executor == "ray":
        if not ray_address:
            raise ConfigError("FLEETLAKE_RAY_ADDRESS", "FLEETLAKE_EXECUTOR=ray needs the cluster's address")
        from ingest.engine.ray_backend import RayBackend

        return RayBackend(ray_address)
    raise ConfigError("FLEETLAKE_EXECUTOR", f"must be one of {', '.join(EXECUTORS)}")
