"""The daemon's pull workers share fairly: a wave of backfills cannot starve a refresh, and one
fleet never runs on two workers. The real Daemon and WorkQueue; the pulls themselves are stand-ins
that block until released (the pulls' own behaviour is tested over HTTP elsewhere)."""

from __future__ import annotations

import threading
from pathlib import Path

from common.states import PullResult, WorkKind
from ingest.daemon import Daemon
from ingest.features import FeatureReport
from ingest.metrics import Metrics
from ingest.service import PullOutcome
from ingest.settings import load_settings
from ingest.views import FleetView
from ingest.workqueue import Work, WorkQueue

WAIT_S = 30  # generous: a failure here is starvation, not slowness


class _BlockingPulls:
    """Service stand-in: every pull of fleet f waits for release[f]; records who ran at once."""

    def __init__(self, tmp_path: Path, workers: int) -> None:
        self.settings = load_settings(data_dir=tmp_path, max_concurrent_fleets=workers, shutdown_grace_s=5)
        self.metrics = Metrics()
        self.release: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.running: set[str] = set()
        self.most_at_once = 0
        self.overlap: list[str] = []

    def gate(self, fid: str) -> None:
        self.release[fid], self.started[fid] = threading.Event(), threading.Event()

    def pull(self, fid: str, stop: threading.Event) -> PullOutcome:
        with self._lock:
            if fid in self.running:
                self.overlap.append(fid)
            self.running.add(fid)
            self.most_at_once = max(self.most_at_once, len(self.running))
        self.started[fid].set()
        self.release[fid].wait(4 * WAIT_S)  # longer than any wait of the test: no accidental release
        with self._lock:
            self.running.discard(fid)
        return PullOutcome(fid, PullResult.ACTIVE, None, None)

    def fleet(self, fid: str) -> FleetView:
        raise KeyError(fid)  # not in a manifest: the daemon's stuck-work watch counts it as a backfill

    def features(self, skip_fleets: frozenset[str] = frozenset()) -> FeatureReport:
        return FeatureReport(())


def test_a_refresh_runs_while_backfills_fill_every_other_worker(tmp_path: Path) -> None:
    service = _BlockingPulls(tmp_path, workers=4)  # one worker kept for refreshes
    daemon = Daemon(service, WorkQueue())  # type: ignore[arg-type]
    backfills = [f"big-{i}" for i in range(6)]
    for fid in backfills + ["small"]:
        service.gate(fid)
    daemon.start_workers()
    try:
        for fid in backfills:
            daemon.submit(Work(WorkKind.PULL, fid))
        for fid in backfills[:3]:
            assert service.started[fid].wait(WAIT_S)
        daemon.submit(Work(WorkKind.REFRESH, "small"))
        assert service.started["small"].wait(WAIT_S), "the refresh waited behind the backfills"
        assert not any(service.release[f].is_set() for f in backfills)
        service.release["small"].set()
        # The backfills never took the reserved worker: three at once, the rest queued.
        assert service.most_at_once == 4 and not service.started["big-3"].is_set()
        for fid in backfills:
            service.release[fid].set()
        for fid in backfills:
            assert service.started[fid].wait(WAIT_S)
    finally:
        for e in service.release.values():
            e.set()
        assert daemon.shutdown()


def test_one_fleet_never_runs_on_two_workers(tmp_path: Path) -> None:
    service = _BlockingPulls(tmp_path, workers=4)
    daemon = Daemon(service, WorkQueue())  # type: ignore[arg-type]
    service.gate("acme")
    daemon.start_workers()
    try:
        daemon.submit(Work(WorkKind.PULL, "acme"))
        assert service.started["acme"].wait(WAIT_S)
        assert daemon.submit(Work(WorkKind.REFRESH, "acme"))  # queued behind the running backfill
        snap = daemon.queue.snapshot()
        assert snap.running_all == ("pull:acme",) and snap.queued == ("refresh:acme",)
        service.release["acme"].set()
        done = threading.Event()
        threading.Thread(target=_wait_for_last, args=(daemon, "refresh:acme", done), daemon=True).start()
        assert done.wait(WAIT_S)
        assert service.overlap == []
    finally:
        service.release["acme"].set()
        assert daemon.shutdown()


def _wait_for_last(daemon: Daemon, key: str, done: threading.Event) -> None:
    while key not in daemon.queue.snapshot().last:
        threading.Event().wait(0.05)
    done.set()


def test_work_is_queued_once_and_a_feature_pass_once_more_behind_a_running_one() -> None:
    q = WorkQueue()
    assert q.submit(Work(WorkKind.FEATURES))
    assert q.take(("features",), timeout=1) == Work(WorkKind.FEATURES)
    # A feature pass may queue once behind a running one; anything else runs once at a time.
    assert q.submit(Work(WorkKind.FEATURES)) and not q.submit(Work(WorkKind.FEATURES))
    assert q.submit(Work(WorkKind.PULL, "a"))
    assert q.take(("backfill",), timeout=1) == Work(WorkKind.PULL, "a")
    assert not q.submit(Work(WorkKind.PULL, "a"))
    assert q.take(("refresh",), timeout=0.1) is None
