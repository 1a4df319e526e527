"""`fleetlake run`: the scheduler, the workers, and the HTTP server, until SIGTERM.

Up to `max_concurrent_fleets` fleets pull at once, each on its own worker thread, its own HTTP
client and its own per-token throttle (a TSP meters each fleet's token separately, so one fleet
waiting on its limit holds nobody else up). A quarter of those workers (at least one, when there
are two or more) take only refreshes: a wave of backfills fills the others and the monthly
refresh of live fleets still starts at once. One more worker runs feature work items (a batch of them at a time).
The work queue (`ingest.runtime.workqueue`) keeps one fleet to one worker at a time; scheduler jobs and
API calls only enqueue, and a key already queued or running is not queued twice.

One owner of the manifest: this process. Month commits from every pull worker go through
partitions.delta's per-table commit lock and the manifest's own lock, so the tables and the
manifest each see one writer; merges and uploads run in parallel outside those locks.

What is queued, and what each work item does, is the pipeline's (`ingest.runtime.pipeline`); the
daemon adds threads, the schedule and the watch. Nothing waits for the monthly cron: at start and
every `replan_s` the pipeline recovers every fleet whose backfill or refresh is not finished and
every fleet with pending windows.

Stuck work is watched (`ingest.runtime.stuck`): each fleet's pull and each feature batch is a unit
whose progress (TSP pages, slices, months, windows recorded) the watch follows, and each failed
pull tells it what it failed on; every few seconds the daemon marks what is stuck in status and
metrics and alerts the webhook once per incident group, and once more when its work progresses.

Shutdown (SIGTERM or SIGINT): stop taking work, set the stop flag (pulls see it between pages,
commit the slices they have in full and return; checkpoints let the next start resume), wait up
to `shutdown_grace_s` for every worker, then exit. Nothing is ever half-committed: commits are
atomic.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from common.states import FleetStatus, Lane, PullResult, RunStatus, WorkKind, WorkOutcome
from ingest.engine.runs import FeatureReport
from ingest.pull.pulls import PullOutcome
from ingest.runtime.alerts import Webhook
from ingest.runtime.app import App
from ingest.runtime.backoff import Backoffs
from ingest.runtime.pipeline import Liveness, Pipeline, Unwatched
from ingest.runtime.stuck import Unit, WorkWatch, stuck_alerts
from ingest.runtime.workqueue import Work, WorkRecord
from partitions.gc import collect_garbage
from partitions.migrate import migrate_markers

log = logging.getLogger("fleetlake.daemon")
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


class _Watching:
    """A work item's signs of life, told to the stuck-work watch."""

    def __init__(self, watch: WorkWatch, unit: Unit) -> None:
        self.watch, self.unit = watch, unit

    def progressed(self) -> None:
        self.watch.progressed(self.unit.fleet_id, None if self.unit.fleet_id else self.unit.kind)

    def landed(self) -> None:
        if self.unit.fleet_id is not None:
            self.watch.landed(self.unit.fleet_id)


class Daemon:
    def __init__(self, app: App, pipeline: Pipeline | None = None) -> None:
        self.app = app
        self.settings = app.settings
        self.queue = app.queue
        self.pipeline = pipeline or Pipeline(app)
        self.stop = threading.Event()  # set on shutdown: in-flight pulls finish and commit
        self.backoffs = Backoffs(self.settings.retry_failed_s)  # read-only to the console (RetrySchedule)
        n = self.settings.max_concurrent_fleets
        reserved = max(1, n // 4) if n > 1 else 0  # with one worker, it serves both lanes in turn
        self._workers = [threading.Thread(target=self._work_loop, name=f"fleetlake-pull-{i}", daemon=True,
                                          args=((Lane.REFRESH,) if i < reserved else (Lane.REFRESH, Lane.BACKFILL),))
                         for i in range(n)]
        self._workers.append(threading.Thread(target=self._work_loop, args=((Lane.FEATURES,),),
                                              name="fleetlake-features", daemon=True))
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
        self.scheduler.add_listener(self._job_failed, EVENT_JOB_ERROR)
        self.watch = WorkWatch(self.settings.stuck_after_s, self.settings.stuck_factor,
                               self.settings.stuck_failed_pulls)
        self.stuck_book = stuck_alerts(Webhook(self.settings.alert_webhook_url,
                                               on_result=app.metrics.alert_result))
        self._stuck_groups: set[str] = set()
        self._runs_finished = -1

    def problems(self) -> list[str]:
        """What keeps the daemon from doing its work, for /readyz."""
        out = []
        if not self.scheduler.running:
            out.append("scheduler: not running")
        if not self.queue.accepting:
            out.append("shutting down")
        return out

    # ------------------------------------------------------------------ the workers
    def _work_loop(self, lanes: tuple[Lane, ...]) -> None:
        while (work := self.queue.take(lanes)) is not None:
            t0 = time.monotonic()
            unit = self._unit(work)
            record = self._watched(work, unit) if unit is not None else self._run(work, Unwatched())
            self.app.metrics.work.labels(work.kind.value, record.outcome.value).inc()
            self._record_outcome(work, record)
            log.info("work %s: %s in %.1fs", work.key, record, time.monotonic() - t0)
            self.queue.finished(work, record)

    def _run(self, work: Work, watch: Liveness) -> WorkRecord:
        try:
            return self.pipeline.run(work, self.stop, watch)
        except Exception as e:  # noqa: BLE001 - one item's failure must not stop the daemon
            log.exception("work %s failed", work.key)
            return WorkRecord(WorkOutcome.ERROR, f"{type(e).__name__}: {e}")

    def _watched(self, work: Work, unit: Unit) -> WorkRecord:
        """Run `work` under the stuck-work watch: what it lands, how it ends, what a failed pull failed on."""
        self.watch.started(unit)
        record: WorkRecord | None = None
        try:
            record = self._run(work, _Watching(self.watch, unit))
        finally:
            pulled = record.result if record is not None and isinstance(record.result, PullOutcome) else None
            completed = record is not None and record.outcome is WorkOutcome.OK and (
                pulled is None or pulled.result is PullResult.ACTIVE)  # a failed or stopped run is no measure of time
            # What a failed pull failed on tells a hung TSP (an incident even when no unit sat idle
            # for stuck_after_s) from a bad grant.
            self.watch.finished(unit, completed, pulled.cause if pulled else None)
        if pulled is not None and pulled.result is PullResult.REVOKED:
            self.watch.forget([pulled.fleet_id])  # it will not be pulled again: its trouble cannot clear
        return record

    def _unit(self, work: Work) -> Unit | None:
        """What the watch follows of a work item: a fleet's pull, or feature work; nothing of a fan-out."""
        if work.kind is WorkKind.FEATURES:
            return Unit(WorkKind.FEATURES, None, None)
        if work.fleet_id is None:
            return None  # a refresh of every fleet only queues one item per fleet
        try:
            tsp: str | None = self.app.reads.fleet(work.fleet_id).tsp
        except KeyError:
            tsp = None
        return Unit(work.kind, work.fleet_id, tsp)

    def _record_outcome(self, work: Work, record: WorkRecord) -> None:
        """Backoff is per fleet: its pulls share one (whichever item pulled it), its windows another."""
        if isinstance(record.result, FeatureReport):  # a batch may span fleets: each is judged on its own windows
            failed = {r.fleet_id for r in record.result.failed}
            for fleet_id in record.result.fleets():
                self._record(Work(WorkKind.FEATURES, fleet_id).key,
                             WorkOutcome.FAILED if fleet_id in failed else WorkOutcome.OK)
        elif work.kind.pulls and work.fleet_id is not None:
            self._record(Work(WorkKind.BACKFILL, work.fleet_id).key, record.outcome)

    def _record(self, key: str, outcome: WorkOutcome) -> None:
        self.backoffs.record(key, outcome)

    def _waited_out(self, key: str) -> bool:
        return self.backoffs.waited_out(key)

    # ------------------------------------------------------------------ scheduled jobs
    def _monthly_refresh(self) -> None:
        self.pipeline.refresh()

    def _retry_failed(self) -> None:
        """Failed fleets, and fleets with failed windows, once their backoff is waited out."""
        for f in self.app.reads.fleets():
            if f.status is FleetStatus.FAILED and self._waited_out(Work(WorkKind.BACKFILL, f.fleet_id).key):
                self.pipeline.backfill(f.fleet_id)
        failed = {r.fleet_id for r in self.app.manifest.latest_runs() if r.status is RunStatus.FAILED}
        for fleet_id in sorted(failed):
            if self._waited_out(Work(WorkKind.FEATURES, fleet_id).key):
                self.pipeline.features(fleet_id)

    def _vacuum(self) -> None:
        report = collect_garbage(self.app.store, self.settings.gc_retention_hours)
        log.info("vacuum: removed %d files, %d bytes", len(report.removed), report.bytes_freed)

    def _replan(self) -> None:
        """At start and every `replan_s`: whatever is unfinished is queued again (the pipeline's
        recovery); windows that failed wait out their backoff (the retry job owns them)."""
        self.pipeline.recover(features_for=lambda fid: self._waited_out(Work(WorkKind.FEATURES, fid).key))

    def _check_stuck(self) -> None:
        """Mark stuck work in status and metrics; alert once per incident group, recover once."""
        finished = self.app.manifest.runs_finished()
        if finished != self._runs_finished:  # a feature window landed since the last check
            self._runs_finished = finished
            self.watch.progressed(kind=WorkKind.FEATURES)
        # A fleet revoked or off-boarded since it got into trouble will not progress again.
        self.watch.forget({t.member for t in self.watch.troubles() if t.group.startswith("pull:")}
                          - {f.fleet_id for f in self.app.reads.fleets() if f.status.pullable})
        stuck = self.watch.check()
        self.queue.mark_stuck({s.unit.member: s.reason for s in stuck})
        now_wrong = self.watch.incidents()
        groups = {i.group: len(i.members) for i in now_wrong}
        for g in self._stuck_groups | set(groups):
            self.app.metrics.stuck.labels(g).set(groups.get(g, 0))
        self._stuck_groups |= set(groups)
        for s in stuck:
            log.warning("stuck: %s: %s", s.unit.label, s.reason)
        self.stuck_book.observe(now_wrong)

    def _job_failed(self, event: JobExecutionEvent) -> None:
        self.app.metrics.job_errors.labels(event.job_id).inc()
        log.error("scheduled job %s failed: %r", event.job_id, event.exception)

    def start(self) -> None:
        s = self.settings
        self.scheduler.add_job(self._monthly_refresh, CronTrigger.from_crontab(s.refresh_cron, timezone="UTC"),
                               id="monthly-refresh")
        self.scheduler.add_job(self._retry_failed, "interval", seconds=max(10, s.retry_failed_s // 4),
                               id="retry-failed")
        self.scheduler.add_job(self._vacuum, "interval", hours=s.gc_interval_hours, id="vacuum")
        self.scheduler.add_job(self._check_stuck, "interval", seconds=max(1, min(30, s.stuck_after_s // 3)),
                               id="stuck-check")
        migrate_markers(self.app.store)  # a store from before the Delta tables converts on first start
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

