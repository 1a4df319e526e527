"""One pull slice as a pure task: fetch, decode, normalise, validate and spool; run by a pull worker.

The daemon plans slices and commits them; a worker (a thread, a local process or a Ray task,
`ingest.pull.workers`) runs `run_slice` and hands back a `SliceResult`. What the worker gets and
what it never gets:

- a short-lived access token, never the refresh token (refresh tokens rotate and are single use:
  only the daemon refreshes). A 401 is not refreshed here: the task answers `token_rejected` and
  the daemon refreshes once and resubmits (a second 401 after that is a revoked consent).
- the TSP's base URL, a rate (its share of the fleet's per-token limit: `rate_per_s` divided
  among the fleet's slices in flight, so all workers together stay within it) and the limits.
- a spool directory on the daemon's disk (local workers), where they leave pings as the parts
  the commit publishes (deduplicated, sorted, written and digested here, not by the one
  committer), or none (remote workers), which then send the spooled Arrow IPC bytes back instead.

A task is idempotent: its files are named for the task, the daemon adopts them only from a
result it received, so a worker killed mid-slice leaves at most an orphan spool file, and the
slice resubmitted elsewhere lands once. Errors travel as `SliceFailure` (type and message),
because our exception classes take more than one argument and do not survive pickling as is.
The token is a field with `repr=False` and is never part of an error message.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from common.months import month_of_ms
from connectors.http import HeaderAuth, Limits, RetryPolicy
from connectors.providers import Connector, open_connector
from ingest.pull import hos_datasets, lookback
from ingest.pull.streams import HOS
from partitions.writer import Spooled, spool_batch


class AccessTokenRejected(Exception):
    """The TSP answered 401 to the access token the task carried (the daemon refreshes it)."""


@dataclass(frozen=True)
class SliceTask:
    tsp: str
    fleet_id: str
    api_url: str
    stream: str          # checkpoint stream name
    dataset: str
    endpoint: str        # connector method
    vehicle_id: str | None
    start_ms: int
    end_ms: int
    now_ms: int
    rate_per_s: float
    lane: int            # which of the fleet's in-flight slots: one connector (and throttle) per lane
    limits: Limits
    spool_dir: str | None
    name: str            # unique per attempt: the spool files' names
    token: str = field(repr=False, compare=False)
    policy: RetryPolicy = RetryPolicy()
    fetch: str = ""                  # the connector method fetching the slice unread (streams.Stream.fetch)
    in_lookback: bool = False        # pulled again next time: digest its pages (ingest.pull.lookback)
    seen: lookback.Seen | None = None  # what its last commit held: unchanged pages are not read


@dataclass(frozen=True)
class SliceFailure:
    module: str
    qualname: str
    message: str
    attrs: dict[str, Any]

    @classmethod
    def of(cls, e: BaseException) -> SliceFailure:
        """What of `e` crosses a pipe: its class, message and plain attributes."""
        attrs = {k: v for k, v in vars(e).items() if isinstance(v, (str, int, float, bool, type(None)))}
        return cls(type(e).__module__, type(e).__qualname__, str(e), attrs)

    def exception(self) -> BaseException:
        """The error as the worker raised it (same class and message) for the daemon to handle or raise."""
        try:
            cls = getattr(importlib.import_module(self.module), self.qualname)
            err = cls.__new__(cls)
            Exception.__init__(err, self.message)
            err.__dict__.update(self.attrs)
            return err
        except Exception:  # noqa: BLE001 - a class we cannot rebuild is still a failed slice
            return RuntimeError(f"{self.qualname}: {self.message}")


@dataclass(frozen=True)
class SliceResult:
    task_name: str
    spooled: Spooled | None
    fetched: int                     # candidate rows the endpoint returned (pages skipped as unchanged too)
    responses: tuple[tuple[int, int], ...] = ()  # (HTTP status, count) for the daemon's metrics
    token_rejected: bool = False
    failure: SliceFailure | None = None
    cpu_s: float = 0.0               # the worker's CPU for this slice (benchmarks)
    worker_pid: int = 0              # the process that ran it (tests: it ran out of the daemon)
    digest: str | None = None        # a lookback slice's pages' digests (Seen.text), to keep once committed
    unchanged: bool = False          # its pages held what `seen` said: nothing was read or spooled


def pull_and_spool(connector: Any, fleet_id: str, dataset: str, endpoint: str, fetch: str,
                   vehicle_id: str | None, start_ms: int, end_ms: int, now_ms: int, in_lookback: bool,
                   seen: lookback.Seen | None, spool_dir: Path | None, name: str) -> SliceResult:
    """Fetch a slice (up to now), and unless it is an unchanged lookback slice, validate and spool it.

    An HOS month (dataset `hos`, [start, end) its bounds) is fetched whole, its three datasets spooled together.
    """
    if dataset == HOS.dataset:
        spooled, rows = hos_datasets.spool_month(connector, fleet_id, month_of_ms(start_ms), now_ms, spool_dir, name)
        return SliceResult(name, spooled, rows)
    end = min(end_ms, now_ms)
    args = (vehicle_id, start_ms, end) if vehicle_id is not None else (start_ms, end)
    pulled = lookback.pull(connector, endpoint, fetch, args, in_lookback, seen)
    if pulled.table is None:
        assert pulled.pages is not None
        return SliceResult(name, None, pulled.skipped_rows, digest=pulled.pages.text, unchanged=True)
    # Pings as the parts the commit publishes: their dedupe, sort, write and digest are done here.
    spooled = spool_batch(fleet_id, dataset, pulled.table, now_ms, spool_dir, name, prepared=True)
    return SliceResult(name, spooled, pulled.table.num_rows + pulled.skipped_rows,
                       digest=lookback.kept(pulled.pages, spooled))


class _TaskToken(HeaderAuth):
    """A bearer token set per task; a 401 raises instead of refreshing (workers never refresh)."""

    def __init__(self) -> None:
        self.token = ""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            raise AccessTokenRejected("the TSP refused the access token")


@dataclass
class _Lane:
    connector: Connector
    auth: _TaskToken
    counts: Counter[int]
    lock: threading.Lock


_LANES: dict[tuple[str, str, str, int, float], _Lane] = {}
_LANES_GUARD = threading.Lock()
MAX_LANES = 256  # connections kept per worker process; the oldest are closed beyond it


def _lane(task: SliceTask) -> _Lane:
    key = (task.tsp, task.fleet_id, task.api_url, task.lane, task.rate_per_s)
    with _LANES_GUARD:
        lane = _LANES.get(key)
        if lane is None:
            auth = _TaskToken()
            counts: Counter[int] = Counter()

            def count(_tsp: str, status: int) -> None:
                counts[status] += 1

            lane = _Lane(open_connector(task.tsp, task.fleet_id, task.api_url, auth, task.rate_per_s, task.policy,
                                        on_response=count, limits=task.limits), auth, counts, threading.Lock())
            _LANES[key] = lane
            while len(_LANES) > MAX_LANES:
                oldest = next(iter(_LANES))
                _LANES.pop(oldest).connector.http.close()
        return lane


def run_slice(task: SliceTask) -> SliceResult:
    """Pull one slice and spool its rows; never raises (a failure is part of the result)."""
    t0 = time.thread_time()
    lane = _lane(task)
    with lane.lock:  # one slice per lane at a time: the lane's throttle paces its share of the rate
        lane.auth.token = task.token
        lane.counts.clear()
        try:
            r = pull_and_spool(lane.connector, task.fleet_id, task.dataset, task.endpoint, task.fetch, task.vehicle_id,
                               task.start_ms, task.end_ms, task.now_ms, task.in_lookback, task.seen,
                               Path(task.spool_dir) if task.spool_dir is not None else None, task.name)
            return replace(r, responses=tuple(lane.counts.items()), cpu_s=time.thread_time() - t0,
                           worker_pid=os.getpid())
        except AccessTokenRejected:
            return SliceResult(task.name, None, 0, tuple(lane.counts.items()), token_rejected=True)
        except BaseException as e:  # noqa: BLE001 - handed to the daemon, which raises it there
            failure = SliceFailure.of(e)
            return SliceResult(task.name, None, 0, tuple(lane.counts.items()), failure=failure)
