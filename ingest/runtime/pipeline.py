"""The pipeline: the one place each kind of work is queued, and the one place each is run.

One fleet, one way down:

    consent (OAuth callback)  -> consented()      -> BACKFILL(F)
    BACKFILL(F) / REFRESH(F)  -> Pulls.pull(F)    -> for each pulled month M: FEATURES(F, M)
                                                  -> when the pull ends: FEATURES(F) (anything else pending)
    FEATURES(F, M)...         -> FeatureRuns.run  -> readiness thresholds reached -> webhook
    re-run asked (console)    -> rerun()          -> runs set aside in the manifest -> FEATURES(F, M)

The pull never runs features: it tells its sink a month is pulled, and the sink queues the
feature work item. Feature work items are the only way features run: in the daemon, in a CLI
command without a daemon (`Runner`: the same queue and handlers on threads of its own), in the
retry of failed windows and in the re-plan (`recover`), which finds whatever a crash or a stop
left behind. Several queued feature items run as one batch, planned together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from common.states import FleetStatus, Lane, PullResult, WorkKind, WorkOutcome
from ingest.engine.runs import FeatureReport
from ingest.pull.backfill import PullProgress
from ingest.pull.pulls import PullOutcome
from ingest.runtime.alerts import Alert
from ingest.runtime.app import App
from ingest.runtime.workqueue import LANES, Work, WorkRecord

log = logging.getLogger("fleetlake.pipeline")


class Liveness(Protocol):
    """Who watches a running work item for signs of life (the daemon's stuck-work watch)."""

    def progressed(self) -> None:
        """Something landed: a TSP page, a slice, a feature window."""

    def landed(self) -> None:
        """Real progress: a month of the pull is complete (every slice committed)."""


class Unwatched:
    def progressed(self) -> None:
        pass

    def landed(self) -> None:
        pass


class _PullSink:
    """What a running pull reports, turned into the queue's progress, the watch's signs of life
    and one feature work item per pulled month."""

    def __init__(self, pipeline: Pipeline, work: Work, watch: Liveness) -> None:
        self.pipeline, self.work, self.watch = pipeline, work, watch

    def progress(self, p: PullProgress) -> None:
        self.pipeline.app.queue.progressed(self.work, p)
        if self.pipeline.on_progress is not None:
            self.pipeline.on_progress(self.work, p)
        self.watch.progressed()

    def landed(self) -> None:
        self.watch.progressed()

    def month_pulled(self, month: str) -> None:
        assert self.work.fleet_id is not None
        self.pipeline.features(self.work.fleet_id, month)
        self.watch.landed()


class Pipeline:
    def __init__(self, app: App, on_progress: Callable[[Work, PullProgress], None] | None = None) -> None:
        """`on_progress`: also told where each running pull stands (a CLI's progress bar)."""
        self.app = app
        self.on_progress = on_progress

    # ------------------------------------------------------------------ queueing
    def consented(self, fleet_id: str) -> bool:
        """A fleet consented: its backfill is queued (the OAuth callback is the one trigger)."""
        return self.backfill(fleet_id)

    def backfill(self, fleet_id: str) -> bool:
        return self.app.queue.submit(Work(WorkKind.BACKFILL, fleet_id))

    def refresh(self, fleet_id: str | None = None) -> bool:
        """One fleet's refresh, or every fleet's (fanned out to one work item per fleet when it runs)."""
        return self.app.queue.submit(Work(WorkKind.REFRESH, fleet_id))

    def features(self, fleet_id: str | None = None, month: str | None = None) -> bool:
        """Feature work: one fleet-month's windows, a fleet's pending windows, or every fleet's."""
        return self.app.queue.submit(Work(WorkKind.FEATURES, fleet_id, month))

    def rerun(self, fleet_id: str, flows: list[tuple[str, int]], month: str | None, requested_by: str
              ) -> tuple[int, bool]:
        """Run one fleet's windows of `flows` (name, version) in `month` (None: every month) again, though
        their inputs and code are unchanged. Their succeeded runs are set aside in the manifest first
        (`superseded_runs`: when, and who asked), so the planner plans them like any changed window, and
        the feature work is queued after: whatever item runs next plans them. A window without a
        succeeded run is pending already. Returns (runs set aside, whether a new work item was queued:
        False when one for the same fleet-month waits already, which will run them)."""
        set_aside = self.app.manifest.supersede_runs(fleet_id, flows, month, requested_by)
        return set_aside, self.features(fleet_id, month)

    def recover(self, features_for: Callable[[str], bool] = lambda _fleet: True) -> None:
        """Queue what is unfinished, whatever stopped it: a consent whose backfill never ran, a
        backfill or refresh cut short by a kill or a stop, windows pending after a kill between a
        pull and its features. Nothing waits for the cron. The queue drops what is already queued
        or running; `features_for` keeps back fleets whose failed windows wait out a backoff.
        """
        queue = self.app.queue
        for f in self.app.reads.fleets():
            if f.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING):
                self.backfill(f.fleet_id)
            elif f.status is FleetStatus.REFRESHING:
                # Unless it is the pull running now (the queue refuses a second one anyway).
                if f.fleet_id not in queue.pulling():
                    self.refresh(f.fleet_id)
        for fleet_id in sorted({t.fleet_id for t in self.app.runs.pending()}):  # one query; opens no data
            if features_for(fleet_id):
                self.features(fleet_id)

    # ------------------------------------------------------------------ running
    def run(self, work: Work, stop: threading.Event, watch: Liveness | None = None) -> WorkRecord:
        """Run one work item (a feature item takes every other runnable feature item with it)."""
        if stop.is_set():
            return WorkRecord(WorkOutcome.SKIPPED, "shutting down")
        if work.kind is WorkKind.FEATURES:
            return self._features([work, *self.app.queue.take_more(Lane.FEATURES)])
        if work.fleet_id is None:
            # Every fleet: one work item each, so they pull side by side and fail alone.
            fleets = [f.fleet_id for f in self.app.reads.fleets() if f.status.pullable]
            queued = sum(self.app.queue.submit(Work(work.kind, fid)) for fid in fleets)
            return WorkRecord(WorkOutcome.OK, f"{queued} of {len(fleets)} fleets queued")
        o = self.app.pulls.pull(work.fleet_id, stop, _PullSink(self, work, watch or Unwatched()))
        if o.result is PullResult.FAILED:
            log.warning("fleet %s: pull failed: %s", work.fleet_id, o.error)
        if stop.is_set():
            return WorkRecord(WorkOutcome.STOPPED, f"fleet {o.result.value}", o)
        if o.result in (PullResult.ACTIVE, PullResult.FAILED):
            # Anything of this fleet still pending (a month whose inputs changed outside the
            # months just pulled): planned for this fleet alone once the pull no longer holds it.
            self.features(work.fleet_id)
        failed = o.result is PullResult.FAILED
        return WorkRecord(WorkOutcome.FAILED if failed else WorkOutcome.OK,
                          f"fleet {o.result.value}{': ' + o.error if o.error else ''}", o)

    def _features(self, batch: list[Work]) -> WorkRecord:
        """One feature batch: the windows of every fleet-month it names, planned fleet by fleet.

        The worker finishes the first item; the others taken with it end here, with the same outcome.
        """
        record = WorkRecord(WorkOutcome.ERROR, "the batch raised")
        try:
            report = self.app.runs.run(self._targets(batch))
            self._check_readiness(report.fleets())
            record = WorkRecord(WorkOutcome.FAILED if report.failed else WorkOutcome.OK,
                                f"{len(report.results)} windows, {len(report.failed)} failed", report)
            return record
        finally:
            for other in batch[1:]:
                self.app.queue.finished(other, WorkRecord(record.outcome, f"run with {batch[0].key}"))

    def _targets(self, batch: list[Work]) -> list[tuple[str, str | None]] | None:
        if any(w.fleet_id is None for w in batch):
            # Every fleet's pending windows, but those of fleets being pulled: their months may still
            # change, and their pull queues their own feature work when it ends.
            pulling = self.app.queue.pulling()
            return [(t.fleet_id, t.month) for t in self.app.runs.pending() if t.fleet_id not in pulling]
        return [(w.fleet_id, w.month) for w in batch if w.fleet_id is not None]

    def _check_readiness(self, fleet_ids: Iterable[str]) -> list[tuple[str, int]]:
        """Fire `fleet.ready_for_quote` for each threshold newly reached, once ever; returns those fired."""
        fired = []
        for fleet_id in fleet_ids:  # a threshold is reached only by windows that just ran
            r = self.app.reads.readiness(fleet_id)
            for t in r.thresholds:
                if not t.reached or t.fired_at is not None or t.first_month is None or t.last_month is None:
                    continue
                # Recorded before it is sent: a crash in between loses one alert rather than sending it twice.
                # Mirrored to the store too: a manifest rebuilt from it never sends this alert again.
                if not self.app.control.record_readiness(fleet_id, t.months, t.first_month, t.last_month, False):
                    continue
                alert = Alert("fleet.ready_for_quote",
                              f"fleet {fleet_id} is ready for a quote: features for the latest {t.months} complete "
                              f"months ({t.first_month} to {t.last_month})",
                              {"fleet_id": fleet_id, "months": t.months, "span": [t.first_month, t.last_month]})
                if self.app.webhook.send(alert):
                    self.app.control.readiness_delivered(fleet_id, t.months)
                fired.append((fleet_id, t.months))
        return fired


class Runner:
    """The pipeline on threads of this process: what a CLI command without a daemon drives.

    One pull worker and one feature worker, so a long backfill's months get their features while
    older months are still being pulled, exactly as in the daemon. `run_until_idle` returns every
    work item's record in the order they finished; the queue stays open for the next call.
    """

    TAKE_S = 0.2  # how long an idle worker waits for work before it looks whether it should stop

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.stop = threading.Event()  # set on Ctrl-C: pulls commit what they have and return

    def _loop(self, lanes: tuple[Lane, ...], idle: threading.Event, done: list[tuple[Work, WorkRecord]]) -> None:
        queue = self.pipeline.app.queue
        while not idle.is_set():
            work = queue.take(lanes, timeout=self.TAKE_S)
            if work is None:
                continue
            try:
                record = self.pipeline.run(work, self.stop)
            except Exception as e:  # noqa: BLE001 - reported as the daemon reports it; the others go on
                log.exception("work %s failed", work.key)
                record = WorkRecord(WorkOutcome.ERROR, f"{type(e).__name__}: {e}")
            done.append((work, record))  # list.append is atomic; the order is the order of finishing
            queue.finished(work, record)

    def run_until_idle(self, submit: Callable[[], object]) -> list[tuple[Work, WorkRecord]]:
        """`submit` queues the work; returns once it and all it queued in turn have run."""
        idle = threading.Event()
        done: list[tuple[Work, WorkRecord]] = []
        threads = [threading.Thread(target=self._loop, args=(lanes, idle, done), name=f"fleetlake-{name}",
                                    daemon=True)
                   for name, lanes in (("pull", LANES[:2]), ("features", (Lane.FEATURES,)))]
        for t in threads:
            t.start()
        try:
            submit()
            self.pipeline.app.queue.wait_idle()
        except BaseException:
            self.stop.set()
            self.pipeline.app.queue.wait_idle()
            raise
        finally:
            idle.set()
            for t in threads:
                t.join()
        return done


def pull_outcomes(done: list[tuple[Work, WorkRecord]]) -> list[PullOutcome]:
    return [r.result for _, r in done if isinstance(r.result, PullOutcome)]


def feature_report(done: list[tuple[Work, WorkRecord]]) -> FeatureReport:
    report = FeatureReport(())
    for _, r in done:
        if isinstance(r.result, FeatureReport):
            report = report + r.result
    return report
