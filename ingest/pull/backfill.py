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
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import pyarrow as pa

from common.errors import ConsentRevoked, PullInterrupted
from common.months import month_bounds_ms, months_between
from common.states import CommitStatus
from connectors.http import Limits
from connectors.samsara import VehicleInfo
from ingest.pull.hos_datasets import HosPull, land_month
from ingest.pull.lookback import Seen
from ingest.pull.slices import SliceResult, SliceTask, pull_and_spool
from ingest.pull.streams import EVENT_SLICE_MS, EVENTS, GPS, HOS, Stream, streams_of
from ingest.pull.workers import SLICE_LANES, PullWorkers, compact_in
from partitions.manifest import Manifest
from partitions.store import ObjectStore
from partitions.writer import CommitResult, MonthWriter, Spooled

log = logging.getLogger("fleetlake.pull")



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


@dataclass(frozen=True)
class RemoteSlices:
    """How a pull hands its slices to pull workers (ingest.pull.workers) instead of its own threads.

    The daemon's side of the token: `access_token` (refreshed here when near expiry) goes into
    each task, `refresh_after_401` is called when a worker's token was refused.
    """
    workers: PullWorkers
    api_url: str
    rate_per_s: float
    limits: Limits
    access_token: Callable[[], str]
    refresh_after_401: Callable[[str], str]
    on_response: Callable[[str, int], None] | None = None


@dataclass
class PullOptions:
    lookback_ms: int | None = None  # None: each stream's own (ingest.pull.streams, 3 days)
    workers: int = SLICE_LANES  # a fleet's slices in flight (its lanes share the token's rate)
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
    # pull (here), and each month's HOS data pulled whole with the month (a task like a slice's),
    # before it is committed.
    hos: HosPull | None = None
    # pull workers (processes or Ray) run the slices; None: this process's threads do
    remote: RemoteSlices | None = None
    # told each slice's result as it lands (benchmarks: the workers' CPU; tests: where it ran)
    on_slice: Callable[[SliceResult], None] | None = None


def stream_name(connector: GpsConnector) -> str:
    return GPS.name(connector.tsp, connector.slice_ms)


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


@dataclass
class _Flight:
    """One slice in flight: what it is, its attempt, its lane, and the future of its result."""
    stream: Stream
    name: str
    w: PullSlice
    future: Future[SliceResult]
    lane: int
    token: str = field(repr=False, default="")
    refreshed: bool = False


class _Slices:
    """Submits a fleet's slices, in process (direct) or to pull workers, with `lanes` in flight.

    Direct: the connector's own threads fetch and spool (the connector refreshes its own token).
    Workers: each slice is a `SliceTask` with the current access token and the lane's share of
    the fleet's rate; a 401 comes back as `token_rejected`, and the daemon refreshes and resubmits
    the slice once (a second 401 is a revoked consent, as `BearerAuth` has it).
    """

    def __init__(self, connector: GpsConnector, fleet_id: str, now_ms: int, opts: PullOptions, spool_dir: Path,
                 pool: ThreadPoolExecutor, seen: dict[str, dict[str, Seen]]) -> None:
        self.connector, self.fleet_id, self.now_ms, self.opts = connector, fleet_id, now_ms, opts
        self.seen = seen  # stream name -> slice key -> what its last commit held (ingest.pull.lookback)
        self.spool_dir = spool_dir
        self.pool = pool
        self.lanes = max(1, opts.workers)
        self.free = list(range(self.lanes))
        self.attempt = 0

    def submit(self, stream: Stream, name: str, w: PullSlice, refreshed: bool = False) -> _Flight:
        lane = self.free.pop(0)
        self.attempt += 1
        task_name = f"{self.fleet_id}-{self.now_ms}-{self.attempt:07d}"
        in_lookback = not completes(stream, w, self.now_ms, self.opts)
        seen = self.seen.get(name, {}).get(w.key) if in_lookback else None
        vehicle = w.vehicle_id if stream.slicing == "vehicle" else None
        remote = self.opts.remote
        if remote is None:
            fut = self.pool.submit(pull_and_spool, self.connector, self.fleet_id, stream.dataset, stream.endpoint,
                                   stream.fetch, vehicle, w.start_ms, w.end_ms, self.now_ms, in_lookback, seen,
                                   self.spool_dir, task_name)
            return _Flight(stream, name, w, fut, lane)
        token = remote.access_token()
        task = SliceTask(self.connector.tsp, self.fleet_id, remote.api_url, name, stream.dataset, stream.endpoint,
                         vehicle, w.start_ms, w.end_ms, self.now_ms,
                         remote.rate_per_s / self.lanes, lane, remote.limits,
                         None if remote.workers.remote else str(self.spool_dir), task_name, token,
                         fetch=stream.fetch, in_lookback=in_lookback, seen=seen)
        return _Flight(stream, name, w, remote.workers.submit(task), lane, token, refreshed)

    def result(self, f: _Flight) -> SliceResult | _Flight:
        """The slice's result, or the flight that replaced it (a refreshed token); raises what the slice raised."""
        try:
            r = f.future.result()
        finally:
            self.free.append(f.lane)
        remote = self.opts.remote
        if remote is not None and remote.on_response is not None:
            for status, n in r.responses:
                for _ in range(n):
                    remote.on_response(self.connector.tsp, status)
        if r.token_rejected and remote is not None:
            if f.refreshed:
                raise ConsentRevoked(self.connector.tsp,
                                     f"fleet {self.fleet_id}: access refused after a token refresh")
            remote.refresh_after_401(f.token)
            return self.submit(f.stream, f.name, f.w, refreshed=True)
        if r.failure is not None:
            raise r.failure.exception()
        return r


def completes(stream: Stream, w: PullSlice, now_ms: int, opts: PullOptions) -> bool:
    """Whether a slice pulled now is checkpointed (never pulled again), or is still in its lookback."""
    lookback = stream.lookback_ms if opts.lookback_ms is None else opts.lookback_ms
    return w.end_ms <= now_ms - lookback


def pull_fleet(connector: GpsConnector, store: ObjectStore, manifest: Manifest, fleet_id: str,
               history_start_ms: int, now_ms: int, options: PullOptions | None = None) -> PullReport:
    """Pull a fleet's streams (ingest.pull.streams: pings and, with `with_events`, safety events) month
    by month, newest complete first."""
    opts = options or PullOptions()
    t0 = time.monotonic()
    streams = streams_of(connector.tsp, opts.with_events)
    names = {s: s.name(connector.tsp, connector.slice_ms) for s in streams}
    gps_name = stream_name(connector)
    vehicles = sorted(v.vehicle_id for v in connector.vehicles())
    planned = {s: plan_slices(vehicles if s.slicing == "vehicle" else ["fleet"], history_start_ms, now_ms,
                              s.grid_ms(connector.slice_ms), manifest.completed_slices(fleet_id, names[s]))
               for s in streams}
    order = backfill_months(history_start_ms, now_ms)
    groups = {s: dict(by_month(planned[s], order)) for s in streams}
    known = manifest.pulled_months(fleet_id)
    # Drivers' hours of service are pulled a month at a time (ingest/pull/hos_datasets.py), whole:
    # one task per month in a lane beside the month's slices (streams.HOS), on the same workers.
    hos_months = opts.hos.pending(connector, manifest, fleet_id, order) if opts.hos else set()
    if opts.hos is not None:
        names[HOS] = opts.hos.stream(connector)
    hos_fetched: list[tuple[str, int]] = []  # HOS months in the writer, not yet committed
    total = sum(len(v) for v in planned.values())
    commits: list[CommitResult] = []
    done_by: Counter[str] = Counter()       # dataset -> slices pulled
    completed_by: Counter[str] = Counter()  # dataset -> slices checkpointed
    rows_seen = 0
    months_done = sum(1 for m in order if m in known or (not any(groups[s][m] for s in streams)
                                                         and m not in hos_months
                                                         and month_bounds_ms(m)[1] <= now_ms))
    fetched: list[tuple[Stream, str, PullSlice, SliceResult]] = []  # pulled in full, not yet committed
    # what each lookback slice's last commit held (ingest.pull.lookback): unchanged pages are not read
    seen = {names[s]: {k: p for k, (text, _rows) in manifest.lookback_pages(fleet_id, names[s]).items()
                       if (p := Seen.parse(text)) is not None}
            for s in streams if s.fetch}
    error: BaseException | None = None

    def progress(month: str | None) -> None:
        if opts.progress:
            opts.progress(PullProgress(fleet_id, month, months_done, len(order), sum(done_by.values()), total,
                                       rows_seen, time.monotonic() - t0))

    # The writer judges "a timestamp in the future" against the pull's now (the TSP's clock),
    # not this machine's: the two differ in the sandbox and, a little, in real life.
    # Local pull workers also sort each completed month's parts into its one file: the daemon's
    # Python, one GIL for every fleet, then only uploads and commits it.
    compactor = compact_in(opts.remote.workers, opts.memory_limit) \
        if opts.remote is not None and not opts.remote.workers.remote else None
    with MonthWriter(store, manifest, fleet_id, pull_id=f"{gps_name}@{now_ms}", work_dir=opts.work_dir,
                     now_ms=now_ms, memory_limit=opts.memory_limit, compactor=compactor) as writer:

        def commit(complete: tuple[str, ...] = ()) -> None:
            # Partial commits append the new rows of a month still landing; a month is merged
            # into one file (compacted) once, when its last slice is in (partitions.writer).
            commits.extend(writer.commit(complete=complete))
            done: dict[tuple[str, str], list[tuple[str, int]]] = {}
            records: list[tuple[str, str, str, int, bool, str | None]] = []
            for stream, name, w, r in fetched:
                if completes(stream, w, now_ms, opts):
                    records.append((name, w.key, stream.dataset, r.fetched, True, None))
                    done.setdefault((name, stream.dataset), []).append((w.key, r.fetched))
                    completed_by[stream.dataset] += 1
                elif not r.unchanged and (r.digest is not None or w.key in seen.get(name, {})):
                    # a lookback slice read again: keep its new digest (or drop the old one)
                    records.append((name, w.key, stream.dataset, r.fetched, False, r.digest))
            if records:
                manifest.record_slices(fleet_id, records)
            fetched.clear()
            for month, rows in hos_fetched:
                if opts.hos is not None and opts.hos.checkpoint(connector, manifest, fleet_id, month, rows, now_ms):
                    done.setdefault((opts.hos.stream(connector), "hos"), []).append((month, rows))
            hos_fetched.clear()
            if opts.on_checkpoints:
                for (name, dataset), keys in done.items():
                    opts.on_checkpoints(fleet_id, name, dataset, keys)

        direct = ThreadPoolExecutor(max(1, opts.workers) if opts.remote is None else 1,
                                    thread_name_prefix=f"pull-{fleet_id}")
        slices = _Slices(connector, fleet_id, now_ms, opts, writer.spool_dir, direct, seen)
        try:
            if opts.hos is not None:
                opts.hos.pull_drivers(connector, writer)
            for month in order:
                if opts.stop.is_set():
                    break
                # The month's HOS first: a few requests that then run beside its slices.
                hos_task = [(HOS, PullSlice("fleet", *month_bounds_ms(month)))] \
                    if opts.hos is not None and month in hos_months else []
                todo = iter(hos_task + [(s, w) for s in streams for w in groups[s][month]])
                fresh = any(groups[s][month] for s in streams) or month in hos_months
                if fresh:
                    progress(month)
                queue: list[_Flight] = []
                try:
                    while True:
                        # A bounded number of slices in flight: memory stays flat over history.
                        while slices.free and not opts.stop.is_set():
                            nxt = next(todo, None)
                            if nxt is None:
                                break
                            queue.append(slices.submit(nxt[0], names[nxt[0]], nxt[1]))
                        if not queue:
                            break
                        f = queue.pop(0)
                        r = slices.result(f)
                        if isinstance(r, _Flight):
                            queue.insert(0, r)
                            continue
                        if opts.on_slice:
                            opts.on_slice(r)
                        if f.stream is HOS:
                            land_month(writer, month, r.spooled or Spooled())
                            hos_fetched.append((month, r.fetched))  # checkpointed by the next commit
                            continue
                        if r.spooled is not None:
                            writer.adopt(r.spooled)
                        fetched.append((f.stream, f.name, f.w, r))
                        done_by[f.stream.dataset] += 1
                        if f.stream.dataset == "pings":
                            rows_seen += r.fetched
                        progress(month)
                        if len(fetched) >= opts.commit_every:
                            commit()
                finally:
                    for q in queue:
                        q.future.cancel()
                        slices.free.append(q.lane)
                if opts.stop.is_set():
                    break  # this month may be partial: committed below, completed by the next run
                closed = month_bounds_ms(month)[1] <= now_ms
                if fresh:
                    # Its last slice is in: one merge of its parts (features read one file per month).
                    commit((month,))
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
        finally:
            # In-flight slices of a stopped pull are not waited for: they are pulled again next time.
            direct.shutdown(wait=opts.remote is None, cancel_futures=True)
        try:
            commit()  # everything fetched in full is committed, even when a later slice failed
            for dataset, month in sorted(writer.appended):  # e.g. an older month a straddling slice reached
                compacted = writer.compact(dataset, month)
                if compacted is not None:
                    commits.append(compacted)
        except Exception as e:
            if error is None:
                raise
            # The error that stopped the pull is the one to report (a full disk fails this commit
            # as it failed the spool); whatever did not commit is pulled again next time.
            log.warning("pull %s: committing the slices fetched before %s failed too: %s", fleet_id,
                        type(error).__name__, type(e).__name__)
        accepted, quarantined, nulled = writer.accepted, dict(writer.quarantined), dict(writer.nulled)
        accepted_events = writer.accepted_events
    stopped = opts.stop.is_set()
    events_planned = sum(len(planned[s]) for s in streams if s.dataset == "events")
    events_report = (PullReport(fleet_id, events_planned, done_by["events"], completed_by["events"], accepted_events,
                                {}, tuple(c for c in commits if c.dataset == "events"), time.monotonic() - t0,
                                stopped=stopped) if opts.with_events else None)
    gps_planned = sum(len(planned[s]) for s in streams if s.dataset == "pings")
    report = PullReport(fleet_id, gps_planned, done_by["pings"], completed_by["pings"], accepted, quarantined,
                        tuple(commits), time.monotonic() - t0, stopped=stopped, nulled=nulled, events=events_report)
    log.info("pull %s: %d/%d slices, %d pings, %d quarantined, months changed %s", fleet_id, done_by["pings"],
             gps_planned, accepted, sum(quarantined.values()), report.months_changed)
    if error is not None and not (isinstance(error, PullInterrupted) and stopped):
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
            lookback = EVENTS.lookback_ms if opts.lookback_ms is None else opts.lookback_ms
            for w, rows in pulled:
                if w.end_ms <= now_ms - lookback:
                    manifest.complete_slice(fleet_id, stream, w.key, "events", rows)
                    done.append((w.key, rows))
            completed = len(done)
            if done and opts.on_checkpoints:
                opts.on_checkpoints(fleet_id, stream, "events", done)
        accepted, quarantined = writer.accepted_events, dict(writer.quarantined)
    return PullReport(fleet_id, len(slices), len(pulled), completed, accepted, quarantined, tuple(commits),
                      time.monotonic() - t0, stopped=opts.stop.is_set())
