"""Backfill and incremental pull: one function, because they are the same plan.

History [history start, now) is cut into pull slices: per vehicle, half-open [start, end), on a
fixed grid (a vehicle-week). A backfill pulls them month by month, the newest complete month
first, then back month by month, then the open month: a preliminary quote needs the newest
months, not the oldest. When every slice overlapping a month is pulled and committed (with the
fleet's safety events for it), the month is recorded as pulled and the caller is told at once,
so its features are computed while older months are still being pulled; nothing pulled later
touches it. A restart plans from the checkpoints, so it resumes at the next month in that order.
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
from common.months import month_bounds_ms, months_between
from common.states import CommitStatus
from connectors.samsara import VehicleInfo
from ingest.pull.hos_datasets import HosPull
from partitions.manifest import Manifest
from partitions.store import ObjectStore
from partitions.writer import CommitResult, MonthWriter

log = logging.getLogger("fleetlake.pull")

DEFAULT_LOOKBACK_MS = 3 * 86_400_000
EVENT_SLICE_MS = 28 * 86_400_000  # fleet-wide slices: events are few


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
    events: PullReport | None = None  # the fleet's safety events, when pulled with the pings

    @property
    def months_changed(self) -> list[str]:
        return sorted({c.month for c in self.commits if c.dataset == "pings" and c.status is CommitStatus.COMMITTED})


@dataclass(frozen=True)
class PullProgress:
    """Where a pull stands, in the units an underwriter waits on: months, pings and time."""
    fleet_id: str
    month: str | None          # the month being pulled (None before the first and after the last)
    months_done: int           # complete months whose raw data is all pulled and committed
    months_total: int          # every month of the history, the open one included
    slices_done: int           # pulled in this run
    slices_total: int          # planned in this run
    pings: int                 # fetched in this run
    seconds: float             # since this run started

    @property
    def pings_per_min(self) -> float | None:
        return self.pings * 60 / self.seconds if self.seconds > 0 and self.slices_done else None

    @property
    def eta_s(self) -> float | None:
        """Time to pull what this run planned, at this run's pace so far; None before anything landed.

        Slices are vehicle-weeks (or fleet-wide event slices) of similar size, so the measured
        seconds per slice extrapolates fairly; the first slices carry connection set-up, so the
        estimate errs long.
        """
        if not self.slices_done:
            return None
        return (self.slices_total - self.slices_done) * self.seconds / self.slices_done


@dataclass
class PullOptions:
    lookback_ms: int = DEFAULT_LOOKBACK_MS
    workers: int = 4
    commit_every: int = 32  # slices per commit: fewer merges of the same month, bounded re-pull
    work_dir: Path | None = None
    memory_limit: str = "1GB"
    stop: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: finish and commit
    # told where the pull stands after each slice and each month, e.g. a progress bar
    progress: Callable[[PullProgress], None] | None = None
    # Pull the fleet's safety events month by month with the pings, so a month is complete (both
    # datasets) before the next older one starts and its features never see its inputs change again.
    with_events: bool = False
    # told each month whose raw data (every slice overlapping it) is now pulled and committed, in
    # pull order: the caller computes that month's features at once.
    on_month: Callable[[str], None] | None = None
    # told (fleet, stream, dataset, [(slice key, rows)]) after the manifest recorded completed slices: the
    # store's mirror of checkpoints (partitions.control_records), so a rebuilt manifest resumes too
    on_checkpoints: Callable[[str, str, str, list[tuple[str, int]]], None] | None = None
    # told (fleet, month) after the manifest recorded a complete month as pulled (`fleet_months`):
    # the store's mirror of pulled months, so a rebuilt manifest knows them too
    on_month_pulled: Callable[[str, str], None] | None = None
    # Drivers and hours of service (ingest/pull/hos_datasets.py): the drivers snapshot once per
    # pull, and each month's HOS data pulled whole with the month, before it is committed.
    hos: HosPull | None = None


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


def backfill_months(history_start_ms: int, now_ms: int) -> list[str]:
    """The order a fleet's months are pulled in: complete months newest first, then the open month.

    A preliminary quote needs the newest complete months; the oldest ones can wait, and the open
    month changes until it closes.
    """
    months = months_between(history_start_ms, now_ms)
    complete = [m for m in months if month_bounds_ms(m)[1] <= now_ms]
    return complete[::-1] + [m for m in months if m not in complete]


def by_month(slices: list[PullSlice], months: list[str]) -> list[tuple[str, list[PullSlice]]]:
    """Each month with the slices still to pull that overlap it, in `months` order.

    A slice straddling two months goes with the first of them in that order (the newer one), so
    when a month's group is done every slice touching it is done, and pulling older months never
    changes it again (its features are computed once).
    """
    left = list(slices)
    out = []
    for month in months:
        lo, hi = month_bounds_ms(month)
        mine = [w for w in left if w.start_ms < hi and w.end_ms > lo]
        left = [w for w in left if not (w.start_ms < hi and w.end_ms > lo)]
        out.append((month, mine))
    return out


def pull_fleet(connector: GpsConnector, store: ObjectStore, manifest: Manifest, fleet_id: str,
               history_start_ms: int, now_ms: int, options: PullOptions | None = None) -> PullReport:
    """Pull a fleet's pings (and, with `with_events`, its safety events) month by month, newest complete first."""
    opts = options or PullOptions()
    t0 = time.monotonic()
    stream = stream_name(connector)
    events_stream = f"{connector.tsp}/events/{EVENT_SLICE_MS}"
    vehicles = sorted(v.vehicle_id for v in connector.vehicles())
    slices = plan_slices(vehicles, history_start_ms, now_ms, connector.slice_ms,
                           manifest.completed_slices(fleet_id, stream))
    event_slices = (plan_slices(["fleet"], history_start_ms, now_ms, EVENT_SLICE_MS,
                                manifest.completed_slices(fleet_id, events_stream)) if opts.with_events else [])
    order = backfill_months(history_start_ms, now_ms)
    groups = by_month(slices, order)
    event_groups = dict(by_month(event_slices, order))
    known = manifest.pulled_months(fleet_id)
    hos_months = opts.hos.pending(connector, manifest, fleet_id, order) if opts.hos else set()
    hos_fetched: list[tuple[str, int]] = []  # HOS months in the writer, not yet committed
    complete_before = now_ms - opts.lookback_ms
    total = len(slices) + len(event_slices)
    commits: list[CommitResult] = []
    pulled = completed = rows_seen = events_pulled = events_completed = 0
    months_done = sum(1 for m, g in groups if m in known or (not g and not event_groups[m] and m not in hos_months
                                                             and month_bounds_ms(m)[1] <= now_ms))
    fetched: list[tuple[str, PullSlice, int]] = []  # (stream, slice) pulled in full, not yet committed
    error: BaseException | None = None

    def progress(month: str | None) -> None:
        if opts.progress:
            opts.progress(PullProgress(fleet_id, month, months_done, len(order), pulled + events_pulled, total,
                                       rows_seen, time.monotonic() - t0))

    # The writer judges "a timestamp in the future" against the pull's now (the TSP's clock),
    # not this machine's: the two differ in the sandbox and, a little, in real life.
    with MonthWriter(store, manifest, fleet_id, pull_id=f"{stream}@{now_ms}", work_dir=opts.work_dir,
                     now_ms=now_ms, memory_limit=opts.memory_limit) as writer:

        def commit() -> None:
            nonlocal completed, events_completed
            commits.extend(writer.commit())
            done: dict[str, list[tuple[str, int]]] = {}
            for name, w, rows in fetched:
                if w.end_ms <= complete_before:
                    manifest.complete_slice(fleet_id, name, w.key, "pings" if name == stream else "events", rows)
                    done.setdefault(name, []).append((w.key, rows))
                    if name == stream:
                        completed += 1
                    else:
                        events_completed += 1
            fetched.clear()
            for month, rows in hos_fetched:
                if opts.hos is not None and opts.hos.checkpoint(connector, manifest, fleet_id, month, rows, now_ms):
                    done.setdefault(opts.hos.stream(connector), []).append((month, rows))
            hos_fetched.clear()
            if opts.on_checkpoints:
                for name, keys in done.items():
                    opts.on_checkpoints(fleet_id, name, "pings" if name == stream else
                                        "events" if name == events_stream else "hos", keys)

        with ThreadPoolExecutor(max(1, opts.workers), thread_name_prefix=f"pull-{fleet_id}") as pool:
            try:
                if opts.hos is not None:
                    opts.hos.pull_drivers(connector, writer, now_ms)
                for month, group in groups:
                    if opts.stop.is_set():
                        break
                    events = event_groups[month]
                    fresh = bool(group or events or month in hos_months)
                    if fresh:
                        progress(month)
                    queue: list[tuple[PullSlice, Future[pa.Table]]] = []
                    todo = iter(group)
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
                            fetched.append((stream, w, table.num_rows))
                            pulled += 1
                            rows_seen += table.num_rows
                            progress(month)
                            if len(fetched) >= opts.commit_every:
                                commit()
                    finally:
                        for _, f in queue:
                            f.cancel()
                    for w in events:
                        if opts.stop.is_set():
                            break
                        table = connector.events_slice(w.start_ms, min(w.end_ms, now_ms))
                        writer.add_events(table)
                        fetched.append((events_stream, w, table.num_rows))
                        events_pulled += 1
                    if opts.hos is not None and month in hos_months and not opts.stop.is_set():
                        hos_fetched.append((month, opts.hos.pull_month(connector, writer, month, now_ms)))
                    if opts.stop.is_set():
                        break  # this month may be partial: committed below, completed by the next run
                    if fresh:
                        commit()
                    closed = month_bounds_ms(month)[1] <= now_ms
                    if closed and month not in known:
                        manifest.record_month_pulled(fleet_id, month)
                        if opts.on_month_pulled:
                            opts.on_month_pulled(fleet_id, month)
                        months_done += 1 if fresh else 0  # a month with nothing left was counted at the start
                    if opts.on_month and (fresh or (closed and month not in known)):
                        opts.on_month(month)
                    if fresh:
                        progress(None if month == order[-1] else month)
            except BaseException as e:  # noqa: BLE001 - committed below, then re-raised
                error = e
        try:
            commit()  # everything fetched in full is committed, even when a later slice failed
        except Exception as e:
            if error is None:
                raise
            # The error that stopped the pull is the one to report (a full disk fails this commit
            # as it failed the spool); whatever did not commit is pulled again next time.
            log.warning("pull %s: committing the slices fetched before %s failed too: %s", fleet_id,
                        type(error).__name__, type(e).__name__)
        accepted, quarantined, nulled = writer.accepted, dict(writer.quarantined), dict(writer.nulled)
        accepted_events = writer.accepted_events
    events_report = (PullReport(fleet_id, len(event_slices), events_pulled, events_completed, accepted_events, {},
                                tuple(c for c in commits if c.dataset == "events"), time.monotonic() - t0,
                                stopped=opts.stop.is_set()) if opts.with_events else None)
    report = PullReport(fleet_id, len(slices), pulled, completed, accepted, quarantined, tuple(commits),
                        time.monotonic() - t0, stopped=opts.stop.is_set(), nulled=nulled, events=events_report)
    log.info("pull %s: %d/%d slices, %d pings, %d quarantined, months changed %s", fleet_id, pulled,
             len(slices), accepted, sum(quarantined.values()), report.months_changed)
    if error is not None and not (isinstance(error, PullInterrupted) and opts.stop.is_set()):
        raise error
    return report


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
            done = []
            for w, rows in pulled:
                if w.end_ms <= now_ms - opts.lookback_ms:
                    manifest.complete_slice(fleet_id, stream, w.key, "events", rows)
                    done.append((w.key, rows))
            completed = len(done)
            if done and opts.on_checkpoints:
                opts.on_checkpoints(fleet_id, stream, "events", done)
        accepted, quarantined = writer.accepted_events, dict(writer.quarantined)
    return PullReport(fleet_id, len(slices), len(pulled), completed, accepted, quarantined, tuple(commits),
                      time.monotonic() - t0, stopped=opts.stop.is_set())
