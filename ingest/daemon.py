"""`fleetlake run`: the scheduler, the workers, and the HTTP server, until SIGTERM.

Up to `max_concurrent_fleets` fleets pull at once, each on its own worker thread, its own HTTP
client and its own per-token throttle (a TSP meters each fleet's token separately, so one fleet
waiting on its limit holds nobody else up). A quarter of those workers (at least one, when there
are two or more) take only refreshes: a wave of backfills fills the others and the monthly
refresh of live fleets still starts at once. One more worker runs feature passes, one at a time.
The work queue (`ingest.workqueue`) keeps one fleet to one worker at a time; scheduler jobs and
API calls only enqueue, and a key already queued or running is not queued twice.

One owner of the manifest: this process. Month commits from every pull worker go through
partitions.delta's per-table commit lock and the manifest's own lock, so the tables and the
manifest each see one writer; merges and uploads run in parallel outside those locks.

Nothing waits for the monthly cron: at start and every `replan_s` the daemon queues every fleet
whose backfill or refresh is not finished and a feature pass when any window is pending.

Stuck work is watched (`ingest.stuck`): each fleet's pull and each feature pass is a unit whose
progress (TSP pages, slices, months, windows recorded) the watch follows, and each failed pull
tells it what it failed on; every few seconds the daemon marks what is stuck in status and
metrics and alerts the webhook once per incident group, and once more when its work progresses.

Shutdown (SIGTERM or SIGINT): stop taking work, set the stop flag (pulls see it between pages,
commit the slices they have in full and return; checkpoints let the next start resume), wait up
to `shutdown_grace_s` for every worker, then exit. Nothing is ever half-committed: commits are
atomic.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import uvicorn
from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from common.states import FleetStatus, PullResult, RunStatus, WorkKind, WorkOutcome
from ingest.alerts import Webhook
from ingest.api import create_app
from ingest.features import FeatureReport
from ingest.planner import plan
from ingest.service import PullOutcome, Service
from ingest.stuck import Unit, WorkWatch, stuck_alerts
from ingest.views import FleetView
from ingest.workqueue import Work, WorkQueue, WorkRecord
from partitions.gc import collect_garbage
from partitions.migrate import migrate_markers

log = logging.getLogger("fleetlake.daemon")
MAX_BACKOFF_S = 24 * 3600
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


class Daemon:
    def __init__(self, service: Service, work: WorkQueue | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.queue = work or WorkQueue()
        self.stop = threading.Event()  # set on shutdown: in-flight pulls finish and commit
        self._backoff: dict[str, _Backoff] = {}
        n = self.settings.max_concurrent_fleets
        reserved = max(1, n // 4) if n > 1 else 0  # with one worker, it serves both lanes in turn
        self._workers = [threading.Thread(target=self._work_loop, name=f"fleetlake-pull-{i}", daemon=True,
                                          args=(("refresh",) if i < reserved else ("refresh", "backfill"),))
                         for i in range(n)]
        self._workers.append(threading.Thread(target=self._work_loop, args=(("features",),),
                                              name="fleetlake-features", daemon=True))
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
        self.scheduler.add_listener(self._job_failed, EVENT_JOB_ERROR)
        self.watch = WorkWatch(self.settings.stuck_after_s, self.settings.stuck_factor,
                               self.settings.stuck_failed_pulls)
        service.on_progress = self.watch.progressed
        service.on_landed = self.watch.landed
        self.stuck_book = stuck_alerts(Webhook(self.settings.alert_webhook_url,
                                               on_result=service.metrics.alert_result))
        self._stuck_groups: set[str] = set()
        self._runs_finished = -1

    def submit(self, work: Work) -> bool:
        return self.queue.submit(work)

    def problems(self) -> list[str]:
        """What keeps the daemon from doing its work, for /readyz."""
        out = []
        if not self.scheduler.running:
            out.append("scheduler: not running")
        if not self.queue.accepting:
            out.append("shutting down")
        return out

    # ------------------------------------------------------------------ the workers
    def _work_loop(self, lanes: tuple[str, ...]) -> None:
        while (work := self.queue.take(lanes)) is not None:
            t0 = time.monotonic()
            try:
                record = self._do(work)
            except Exception as e:  # noqa: BLE001 - one item's failure must not stop the daemon
                log.exception("work %s failed", work.key)
                record = WorkRecord(WorkOutcome.ERROR, f"{type(e).__name__}: {e}")
            self.service.metrics.work.labels(work.kind.value, record.outcome.value).inc()
            if record.outcome is WorkOutcome.ERROR:
                self._record(work.key, record.outcome)
            log.info("work %s: %s in %.1fs", work.key, record, time.monotonic() - t0)
            self.queue.finished(work, record)
            if (work.kind is not WorkKind.FEATURES and work.fleet_id is not None
                    and record.outcome in (WorkOutcome.OK, WorkOutcome.FAILED)):
                # Features run on their own worker, queued only once this fleet is no longer
                # busy: a pass taken while it still counted as being pulled would skip it.
                self.submit(Work(WorkKind.FEATURES))

    def _do(self, work: Work) -> WorkRecord:
        if self.stop.is_set():
            return WorkRecord(WorkOutcome.SKIPPED, "shutting down")
        if work.kind is WorkKind.FEATURES:
            report = self._features()
            return WorkRecord(WorkOutcome.FAILED if report.failed else WorkOutcome.OK,
                              f"{len(report.results)} windows, {len(report.failed)} failed")
        if work.fleet_id is None:
            # Every fleet: one work item each, so they pull side by side and fail alone.
            fleets = [f.fleet_id for f in self.service.fleets() if f.status.pullable]
            queued = sum(self.submit(Work(work.kind, fid)) for fid in fleets)
            return WorkRecord(WorkOutcome.OK, f"{queued} of {len(fleets)} fleets queued")
        fid = work.fleet_id
        unit = self._pull_unit(fid)
        self.watch.started(unit)
        o: PullOutcome | None = None
        try:
            o = self.service.pull(fid, self.stop)
        finally:
            # A failed or stopped pull is no measure of time; what a failed one failed on tells a
            # hung TSP (an incident even when no unit sat idle for stuck_after_s) from a bad grant.
            self.watch.finished(unit, o is not None and o.result is PullResult.ACTIVE, o.cause if o else None)
        if o.result is PullResult.REVOKED:
            self.watch.forget([fid])  # it will not be pulled again: its trouble cannot clear
        # Backoff is per fleet, whichever work item pulled it.
        failed = o.result is PullResult.FAILED
        self._record(Work(WorkKind.PULL, fid).key, WorkOutcome.FAILED if failed else WorkOutcome.OK)
        if failed:
            log.warning("fleet %s: pull failed: %s", fid, o.error)
        if self.stop.is_set():
            return WorkRecord(WorkOutcome.STOPPED, f"fleet {o.result.value}")
        return WorkRecord(WorkOutcome.FAILED if failed else WorkOutcome.OK,
                          f"fleet {o.result.value}{': ' + o.error if o.error else ''}; features queued")

    def _pull_unit(self, fleet_id: str) -> Unit:
        try:
            f: FleetView | None = self.service.fleet(fleet_id)
        except KeyError:
            f = None
        backfill = f is None or f.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING)
        return Unit("backfill" if backfill else "refresh", fleet_id, f.tsp if f else None)

    def _features(self) -> FeatureReport:
        unit = Unit("features", None, None)
        self.watch.started(unit)
        try:
            # A fleet mid-pull is left out: its pull queues another pass when it ends.
            report = self.service.features(skip_fleets=self.queue.busy_fleets())
        finally:
            self.watch.finished(unit)
        # Failed windows are planned again by every pass; the retry job waits out this backoff.
        self._record(Work(WorkKind.FEATURES).key, WorkOutcome.FAILED if report.failed else WorkOutcome.OK)
        return report

    def _record(self, key: str, outcome: WorkOutcome) -> None:
        b = self._backoff.setdefault(key, _Backoff())
        if outcome.counts_as_failure:
            b.failures += 1
            b.not_before = time.time() + min(MAX_BACKOFF_S, self.settings.retry_failed_s * 2 ** (b.failures - 1))
        else:
            b.failures, b.not_before = 0, 0.0

    # ------------------------------------------------------------------ scheduled jobs
    def _monthly_refresh(self) -> None:
        self.submit(Work(WorkKind.REFRESH))

    def _start_new_backfills(self) -> None:
        for f in self.service.fleets():
            # "backfilling" too: a backfill interrupted by a restart resumes from its checkpoints.
            if f.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING):
                self.submit(Work(WorkKind.PULL, f.fleet_id))
            elif f.status is FleetStatus.REFRESHING:
                # A refresh cut short by a kill or a stop: finished now, not at the next cron (unless
                # it is the one running now).
                running = self.queue.snapshot().running
                if running is None or not Work.parse(running).touches(f.fleet_id):
                    self.submit(Work(WorkKind.REFRESH, f.fleet_id))

    def _retry_failed(self) -> None:
        now = time.time()
        for f in self.service.fleets():
            key = Work(WorkKind.PULL, f.fleet_id).key
            if f.status is FleetStatus.FAILED and self._backoff.get(key, _Backoff()).not_before <= now:
                self.submit(Work(WorkKind.PULL, f.fleet_id))
        features = Work(WorkKind.FEATURES)
        if self._backoff.get(features.key, _Backoff()).not_before <= now and self._failed_windows():
            self.submit(features)

    def _vacuum(self) -> None:
        report = collect_garbage(self.service.store, self.settings.gc_retention_hours)
        log.info("vacuum: removed %d files, %d bytes", len(report.removed), report.bytes_freed)

    def _replan(self) -> None:
        """Queue what is pending, whatever stopped it: a kill between a pull and its features, a
        feature pass cut short, a backfill interrupted by a restart. Nothing waits for the cron.

        Runs at start and every `replan_s`; the queue drops what is already queued or running, and
        windows that failed wait out their backoff (the retry job owns them).
        """
        self._start_new_backfills()
        features = Work(WorkKind.FEATURES)
        if self._backoff.get(features.key, _Backoff()).not_before > time.time():
            return
        if plan(self.service.manifest, self.service.flows):  # one set-based query; opens no data
            self.submit(features)

    def _check_stuck(self) -> None:
        """Mark stuck work in status and metrics; alert once per incident group, recover once."""
        finished = self.service.manifest.runs_finished()
        if finished != self._runs_finished:  # a feature window landed since the last check
            self._runs_finished = finished
            self.watch.progressed(kind="features")
        for fleet_id in tuple(self.service.computing):
            # A pull computing a completed month's features lands no pages meanwhile, yet is working.
            self.watch.alive(fleet_id)
        # A fleet revoked or off-boarded since it got into trouble will not progress again.
        self.watch.forget({t.member for t in self.watch.troubles() if t.group.startswith("pull:")}
                          - {f.fleet_id for f in self.service.fleets() if f.status.pullable})
        stuck = self.watch.check()
        self.service.stuck = {s.unit.member: s.reason for s in stuck}
        now_wrong = self.watch.incidents()
        groups = {i.group: len(i.members) for i in now_wrong}
        for g in self._stuck_groups | set(groups):
            self.service.metrics.stuck.labels(g).set(groups.get(g, 0))
        self._stuck_groups |= set(groups)
        for s in stuck:
            log.warning("stuck: %s: %s", s.unit.label, s.reason)
        self.stuck_book.observe(now_wrong)

    def _failed_windows(self) -> bool:
        return any(r.status is RunStatus.FAILED for r in self.service.manifest.latest_runs())

    def _job_failed(self, event: JobExecutionEvent) -> None:
        self.service.metrics.job_errors.labels(event.job_id).inc()
        log.error("scheduled job %s failed: %r", event.job_id, event.exception)

    def start(self) -> None:
        s = self.settings
        self.scheduler.add_job(self._monthly_refresh, CronTrigger.from_crontab(s.refresh_cron, timezone="UTC"),
                               id="monthly-refresh")
        self.scheduler.add_job(self._start_new_backfills, "interval", seconds=s.backfill_poll_s, id="new-backfills",
                               next_run_time=datetime.now(timezone.utc))
        self.scheduler.add_job(self._retry_failed, "interval", seconds=max(10, s.retry_failed_s // 4),
                               id="retry-failed")
        self.scheduler.add_job(self._vacuum, "interval", hours=s.gc_interval_hours, id="vacuum")
        self.scheduler.add_job(self._check_stuck, "interval", seconds=max(1, min(30, s.stuck_after_s // 3)),
                               id="stuck-check")
        migrate_markers(self.service.store)  # a store from before the Delta tables converts on first start
        self.scheduler.add_job(self._replan, "interval", seconds=s.replan_s, id="replan",
                               next_run_time=datetime.now(timezone.utc))
        self.start_workers()
        self.scheduler.start()

    def start_workers(self) -> None:
        """The pull and feature workers alone (start() also runs the scheduler)."""
        for t in self._workers:
            t.start()

    def shutdown(self) -> bool:
        """Stop taking work, let in-flight work wrap up; True if it finished within the grace period."""
        self.queue.close()
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        end = time.monotonic() + self.settings.shutdown_grace_s
        for t in self._workers:
            if t.is_alive():
                t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._workers)


def serve(daemon: Daemon) -> int:
    """Run the daemon and its HTTP server in this (main) thread until SIGTERM or SIGINT."""
    s = daemon.settings
    app = create_app(daemon.service, daemon.queue, daemon.problems)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (or from
    # $FORWARDED_ALLOW_IPS); which peers are believed is FLEETLAKE_TRUSTED_PROXIES (ingest.proxies).
    server = uvicorn.Server(uvicorn.Config(app, host=s.http_host, port=s.http_port, proxy_headers=False,
                                           log_level="warning", access_log=False, lifespan="off"))
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http = threading.Thread(target=server.run, name="fleetlake-http", daemon=True)
    http.start()
    daemon.start()
    log.info("fleetlake running: http://%s:%s, refresh cron %r (UTC)", s.http_host, s.http_port, s.refresh_cron)
    stopping.wait()
    clean = daemon.shutdown()
    server.should_exit = True
    http.join(10)
    log.info("fleetlake stopped%s", "" if clean else " (in-flight work did not finish in the grace period)")
    return 0 if clean else 1
