"""Tasks on a Ray cluster (FLEETLAKE_EXECUTOR=ray, FLEETLAKE_RAY_ADDRESS), for when one machine is not enough.

Ray is an optional extra (`pip install 'fleetlake[ray]'`): this module is the only one that
imports it, and only when a Ray backend is opened, so the core runs without it.

- The daemon connects as a Ray *driver* for one feature pass and disconnects after it; tasks
  it submitted die with it, which is harmless because a task only writes content-named files
  that nothing names until the daemon commits them.
- A task function travels by reference (module and name), so the workers must have the same
  fleetlake installed (the same image, or the same venv on VMs); only its argument is pickled.
- A failed task raises its own exception in the daemon, not Ray's wrapper, so the manifest
  records the same error text whichever backend ran it (Ray's wrapper carries the remote
  traceback, which belongs in the worker's log, not in the manifest).
- Ray retries a task whose worker process or node died (its default, 3 times): the tasks are
  pure and idempotent, so a retry is safe. An exception the task raised is not retried.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

from common.errors import ConfigError

A = TypeVar("A")
R = TypeVar("R")

log = logging.getLogger(__name__)

CONNECT_ATTEMPTS = 3
CONNECT_BACKOFF_S = 2.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("FLEETLAKE_EXECUTOR", "ray is not installed: pip install 'fleetlake[ray]'") from None
    return ray


class RayBackend:
    remote = True

    def __init__(self, address: str) -> None:
        ray = self._ray = _ray()
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                # Our logging stays ours: Ray adds its own handler only to its own loggers at WARNING.
                ray.init(address=address, namespace="fleetlake", logging_level=logging.WARNING,
                         configure_logging=True, log_to_driver=True)
                break
            except ConnectionError as e:
                # The head's Ray Client server starts one server process per driver; on a busy head
                # that start can time out once. Bounded: a cluster that is down fails the pass.
                ray.shutdown()
                if attempt == CONNECT_ATTEMPTS:
                    raise
                log.warning("connecting to the Ray cluster at %s failed (%s), retrying", address,
                            type(e).__name__)
                time.sleep(CONNECT_BACKOFF_S * attempt)
        self._remote: dict[Callable[..., Any], Any] = {}
        log.info("connected to the Ray cluster at %s (%s CPUs)", address,
                 int(ray.cluster_resources().get("CPU", 0)))

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(fn)
        ray_future = remote.remote(arg).future()
        out: Future[R] = Future()

        def settle(f: Future[R]) -> None:
            if f.cancelled():
                out.cancel()
                return
            e = f.exception()
            if e is None:
                out.set_result(f.result())
            else:
                out.set_exception(getattr(e, "cause", None) or e)  # RayTaskError -> the task's own error

        ray_future.add_done_callback(settle)
        return out

    def close(self) -> None:
        self._ray.shutdown()
