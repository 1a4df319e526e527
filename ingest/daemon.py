"""`fleetlake run`: the scheduler, one work thread, and the HTTP server, until SIGTERM.

All work (pulls, feature passes) runs on a single worker thread, fed by a queue: the manifest
has one writer, and a fleet's pull and its features must not race. Scheduler jobs and API calls
only enqueue; a key already queued or running is not queued twice.

Shutdown (SIGTERM or SIGINT): stop taking work, tell the in-flight pull to stop (it finishes and
commits the windows it has; checkpoints let the next start resume), wait up to
`shutdown_grace_s`, then exit. Nothing is ever half-committed: commits are atomic.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from ingest.service import Service

log = logging.getLogger("fleetlake.daemon")
MAX_BACKOFF_S = 24 * 3600
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


@dataclass(frozen=True)
class Work:
    kind: str  # pull | refresh | features
    fleet_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.fleet_id or '*'}"


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class WorkState:
    queued: set[str] = field(default_factory=set)
    running: str | None = None
    last: dict[str, str] = field(default_factory=dict)  # key -> outcome of its last run


class Daemon:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings
        self.stop = threading.Event()  # set on shutdown: in-flight pulls finish and commit
        self.accepting = True
        self._queue: queue.Queue[Work | None] = queue.Queue()
        self._lock = threading.Lock()
        self.state = WorkState()
        self._backoff: dict[str, _Backoff] = {}
        self._worker = threading.Thread(target=self._work_loop, name="fleetlake-work", daemon=True)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
        self.scheduler.add_listener(self._job_failed, EVENT_JOB_ERROR)

    # ------------------------------------------------------------------ queueing
    def submit(self, work: Work) -> bool:
        """Queue work unless it is queued or running already, or we are shutting down; True if queued."""
        with self._lock:
            if not self.accepting or work.key in self.state.queued or work.key == self.state.running:
                return False
            self.state.queued.add(work.key)
        self._queue.put(work)
        return True

    def _work_loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            with self._lock:
                self.state.queued.discard(work.key)
                self.state.running = work.key
            t0 = time.monotonic()
            try:
                outcome = self._do(work)
            except Exception as e:  # noqa: BLE001 - one item's failure must not stop the daemon
                log.exception("work %s failed", work.key)
                outcome = f"error: {type(e).__name__}: {e}"
            self.service.metrics.work.labels(work.kind, outcome.split(":")[0]).inc()
            if outcome.startswith("error"):
                self._record(work.key, outcome)
            log.info("work %s: %s in %.1fs", work.key, outcome, time.monotonic() - t0)
            with self._lock:
                self.state.running = None
                self.state.last[work.key] = outcome

    def _do(self, work: Work) -> str:
        if self.stop.is_set():
            return "skipped: shutting down"
        if work.kind in ("pull", "refresh"):
            fleets = [work.fleet_id] if work.fleet_id else [
                f["fleet_id"] for f in self.service.fleets() if f["status"] not in ("revoked",)]
            outcomes = []
            for fid in fleets:
                if self.stop.is_set():
                    break
                o = self.service.pull(fid, self.stop)
                outcomes.append(o.status)
                # Backoff is per fleet, whichever work item pulled it.
                self._record(Work("pull", fid).key, "failed" if o.status == "failed" else "ok")
                if o.status == "failed":
                    log.warning("fleet %s: pull failed: %s", fid, o.error)
            if self.stop.is_set():
                return "stopped"
            report = self._features()
            failed = len(report.failed)
            bad = [s for s in outcomes if s in ("failed",)]
            return (f"{'failed' if bad or failed else 'ok'}: fleets {','.join(outcomes) or 'none'}; "
                    f"{len(report.results)} feature windows, {failed} failed")
        if work.kind == "features":
            report = self._features()
            return f"{'failed' if report.failed else 'ok'}: {len(report.results)} windows, {len(report.failed)} failed"
        raise ValueError(f"unknown work kind {work.kind}")

    def _features(self):  # type: ignore[no-untyped-def]
        report = self.service.features()
        # Failed windows are planned again by every pass; the retry job waits out this backoff.
        self._record(Work("features").key, "failed" if report.failed else "ok")
        return report

    def _record(self, key: str, outcome: str) -> None:
        b = self._backoff.setdefault(key, _Backoff())
        if outcome.startswith(("failed", "error")):
            b.failures += 1
            b.not_before = time.time() + min(MAX_BACKOFF_S, self.settings.retry_failed_s * 2 ** (b.failures - 1))
        else:
            b.failures, b.not_before = 0, 0.0

    # ------------------------------------------------------------------ scheduled jobs
    def _monthly_refresh(self) -> None:
        self.submit(Work("refresh"))

    def _start_new_backfills(self) -> None:
        for f in self.service.fleets():
            # "backfilling" too: a backfill interrupted by a restart resumes from its checkpoints.
            if f["status"] in ("consented", "backfilling"):
                self.submit(Work("pull", f["fleet_id"]))

    def _retry_failed(self) -> None:
        now = time.time()
        for f in self.service.fleets():
            key = Work("pull", f["fleet_id"]).key
            if f["status"] == "failed" and self._backoff.get(key, _Backoff()).not_before <= now:
                self.submit(Work("pull", f["fleet_id"]))
        if self._backoff.get(Work("features").key, _Backoff()).not_before <= now and self._failed_windows():
            self.submit(Work("features"))

    def _vacuum(self) -> None:
        from partitions.gc import collect_garbage

        report = collect_garbage(self.service.store, self.settings.gc_retention_hours)
        log.info("vacuum: removed %d files, %d bytes", len(report.removed), report.bytes_freed)

    def _failed_windows(self) -> bool:
        return any(r["status"] == "failed" for r in self.service.manifest.latest_runs())

    def _job_failed(self, event: JobExecutionEvent) -> None:
        self.service.metrics.job_errors.labels(event.job_id).inc()
        log.error("scheduled job %s failed: %r", event.job_id, event.exception)

    def start(self) -> None:
        s = self.settings
        self.scheduler.add_job(self._monthly_refresh, CronTrigger.from_crontab(s.refresh_cron, timezone="UTC"),
                               id="monthly-refresh")
        self.scheduler.add_job(self._start_new_backfills, "interval", seconds=s.backfill_poll_s, id="new-backfills",
                               next_run_time=_now())
        self.scheduler.add_job(self._retry_failed, "interval", seconds=max(10, s.retry_failed_s // 4),
                               id="retry-failed")
        self.scheduler.add_job(self._vacuum, "interval", hours=s.gc_interval_hours, id="vacuum")
        from partitions.migrate import migrate_markers

        migrate_markers(self.service.store)  # a store from before the Delta tables converts on first start
        self._worker.start()
        self.scheduler.start()

    def shutdown(self) -> bool:
        """Stop taking work, let in-flight work wrap up; True if it finished within the grace period."""
        with self._lock:
            self.accepting = False
        self.stop.set()
        self.scheduler.shutdown(wait=False)
        while True:  # drop queued work: it is rediscovered from the manifest on the next start
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._worker.join(self.settings.shutdown_grace_s)
        return not self._worker.is_alive()


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def serve(daemon: Daemon) -> int:
    """Run the daemon and its HTTP server in this (main) thread until SIGTERM or SIGINT."""
    import uvicorn

    from ingest.api import create_app

    s = daemon.settings
    server = uvicorn.Server(uvicorn.Config(create_app(daemon.service, daemon), host=s.http_host, port=s.http_port,
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
