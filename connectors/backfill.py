"""Backfill and incremental pull: one function, because they are the same plan.

History [history start, now) is cut into pull slices: per vehicle, half-open [start, end), on a
fixed grid (a vehicle-week).
Slices are pulled concurrently, streamed into the month writer, and committed in groups; a
slice is checkpointed in the manifest only after its pings are committed, and only once it
ended more than `lookback` before now. So:

- a killed backfill resumes where it stopped and re-pulls nothing completed (a slice pulled
  but not yet committed is pulled again; the merge makes that harmless);
- the monthly refresh is the same call later: it pulls the slices since the last completed
  one, plus the last `lookback` (default 3 days) again, for pings that arrive late;
- a TSP failure stops this fleet's pull after committing every slice fetched in full, and is
  raised to the caller, which marks the fleet and carries on with the others;
- the stop flag is seen between pages (the connector's HTTP raises PullInterrupted before the next
  request): in-flight slices end after their current page, whole slices are committed, and the
  pull returns as stopped, not failed.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import pyarrow as pa

from common.errors import PullInterrupted
from connectors.samsara import VehicleInfo
from partitions.manifest import Manifest
from partitions.store import ObjectStore
from partitions.writer import CommitResult, MonthWriter

log = logging.getLogger("fleetlake.pull")

DEFAULT_LOOKBACK_MS = 3 * 86_400_000


class GpsConnector(Protocol):
    tsp: str
    slice_ms: int

    def vehicles(self) -> list[VehicleInfo]: ...
    def gps_slice(self, vehicle_id: str, start_ms: int, end_ms: int) -> pa.Table: ...
    def events_slice(self, start_ms: int, end_ms: int) -> pa.Table: ...


@dataclass(frozen=True)
class PullSlice:
    vehicle_id: str
    start_ms: int
    end_ms: int

    @property
    def key(self) -> str:
        return f"{self.vehicle_id}/{self.start_ms}"


@dataclass(frozen=True)
class PullReport:
    fleet_id: str
    slices_planned: int
    slices_pulled: int
    slices_completed: int
    rows_accepted: int
    quarantined: dict[str, int]
    commits: tuple[CommitResult, ...]
    seconds: float
    stopped: bool = False
    nulled: dict[str, int] = field(default_factory=dict)  # optional values made null, by reason

    @property
    def months_changed(self) -> list[str]:
        return sorted({c.month for c in self.commits if c.dataset == "pings" and c.status == "committed"})


@dataclass
class PullOptions:
    lookback_ms: int = DEFAULT_LOOKBACK_MS
    workers: int = 4
    commit_every: int = 32  # slices per commit: fewer merges of the same month, bounded re-pull
    work_dir: Path | None = None
    memory_limit: str = "1GB"
    stop: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: finish and commit
    # told (slices pulled, slices planned, rows fetched) after each slice, e.g. a progress bar
    progress: Callable[[int, int, int], None] | None = None


def stream_name(connector: GpsConnector) -> str:
    return f"{connector.tsp}/gps/{connector.slice_ms}"


def plan_slices(vehicles: list[str], history_start_ms: int, now_ms: int, slice_ms: int,
                 done: set[str]) -> list[PullSlice]:
    """Grid-aligned slices covering [history start, now) per vehicle, minus completed ones."""
    first = history_start_ms - history_start_ms % slice_ms
    out = []
    for start in range(first, now_ms, slice_ms):
        for vid in vehicles:
            w = PullSlice(vid, max(start, history_start_ms), start + slice_ms)
            if w.key not in done:
                out.append(w)
    return out


def pull_fleet(connector: GpsConnector, store: ObjectStore, manifest: Manifest, fleet_id: str,
               history_start_ms: int, now_ms: int, options: PullOptions | None = None) -> PullReport:
    opts = options or PullOptions()
    t0 = time.monotonic()
    stream = stream_name(connector)
    vehicles = sorted(v.vehicle_id for v in connector.vehicles())
    slices = plan_slices(vehicles, history_start_ms, now_ms, connector.slice_ms,
                           manifest.completed_slices(fleet_id, stream))
    complete_before = now_ms - opts.lookback_ms
    commits: list[CommitResult] = []
    pulled = completed = rows_seen = 0
    fetched: list[tuple[PullSlice, int]] = []  # pulled in full, added to the writer, not yet committed
    error: BaseException | None = None
    # The writer judges "a timestamp in the future" against the pull's now (the TSP's clock),
    # not this machine's: the two differ in the sandbox and, a little, in real life.
    with MonthWriter(store, manifest, fleet_id, pull_id=f"{stream}@{now_ms}", work_dir=opts.work_dir,
                     now_ms=now_ms, memory_limit=opts.memory_limit) as writer:

        def commit() -> None:
            nonlocal completed
            commits.extend(writer.commit())
            for w, rows in fetched:
                if w.end_ms <= complete_before:
                    manifest.complete_slice(fleet_id, stream, w.key, rows)
                    completed += 1
            fetched.clear()

        with ThreadPoolExecutor(max(1, opts.workers), thread_name_prefix=f"pull-{fleet_id}") as pool:
            queue: list[tuple[PullSlice, Future[pa.Table]]] = []
            todo = iter(slices)
            try:
                while True:
                    # Keep a bounded number of slices in flight: memory stays flat over history.
                    while len(queue) < 2 * max(1, opts.workers) and not opts.stop.is_set():
                        w = next(todo, None)
                        if w is None:
                            break
                        queue.append((w, pool.submit(connector.gps_slice, w.vehicle_id, w.start_ms,
                                                     min(w.end_ms, now_ms))))
                    if not queue:
                        break
                    w, fut = queue.pop(0)
                    table = fut.result()
                    writer.add(table)
                    fetched.append((w, table.num_rows))
                    pulled += 1
                    rows_seen += table.num_rows
                    if opts.progress:
                        opts.progress(pulled, len(slices), rows_seen)
                    if len(fetched) >= opts.commit_every:
                        commit()
            except BaseException as e:  # noqa: BLE001 - committed below, then re-raised
                error = e
                for _, f in queue:
                    f.cancel()
        commit()  # everything fetched in full is committed, even when a later slice failed
        accepted, quarantined, nulled = writer.accepted, dict(writer.quarantined), dict(writer.nulled)
    report = PullReport(fleet_id, len(slices), pulled, completed, accepted, quarantined, tuple(commits),
                        time.monotonic() - t0, stopped=opts.stop.is_set(), nulled=nulled)
    log.info("pull %s: %d/%d slices, %d pings, %d quarantined, months changed %s", fleet_id, pulled,
             len(slices), accepted, sum(quarantined.values()), report.months_changed)
    if error is not None and not (isinstance(error, PullInterrupted) and opts.stop.is_set()):
        raise error
    return report



EVENT_SLICE_MS = 28 * 86_400_000  # fleet-wide slices: events are few


def pull_events(connector: GpsConnector, store: ObjectStore, manifest: Manifest, fleet_id: str,
                history_start_ms: int, now_ms: int, options: PullOptions | None = None) -> PullReport:
    """TSP safety events of the whole fleet into raw/events, with the same checkpoint rules."""
    opts = options or PullOptions()
    t0 = time.monotonic()
    stream = f"{connector.tsp}/events/{EVENT_SLICE_MS}"
    slices = plan_slices(["fleet"], history_start_ms, now_ms, EVENT_SLICE_MS,
                           manifest.completed_slices(fleet_id, stream))
    with MonthWriter(store, manifest, fleet_id, pull_id=f"{stream}@{now_ms}", work_dir=opts.work_dir,
                     now_ms=now_ms, memory_limit=opts.memory_limit) as writer:
        pulled: list[tuple[PullSlice, int]] = []
        try:
            for w in slices:
                if opts.stop.is_set():
                    break
                try:
                    table = connector.events_slice(w.start_ms, min(w.end_ms, now_ms))
                except PullInterrupted:
                    break  # stopping: the slices pulled in full are committed below
                writer.add_events(table)
                pulled.append((w, table.num_rows))
        finally:
            commits = writer.commit()  # whole slices only: a failed slice added nothing
            completed = 0
            for w, rows in pulled:
                if w.end_ms <= now_ms - opts.lookback_ms:
                    manifest.complete_slice(fleet_id, stream, w.key, rows)
                    completed += 1
        accepted, quarantined = writer.accepted_events, dict(writer.quarantined)
    return PullReport(fleet_id, len(slices), len(pulled), completed, accepted, quarantined, tuple(commits),
                      time.monotonic() - t0, stopped=opts.stop.is_set())
