"""The daemon's pull workers share fairly: a wave of backfills cannot starve a refresh, and one
fleet never runs on two workers. The real Daemon and WorkQueue; the pulls themselves are stand-ins
that block until released (the pulls' own behaviour is tested over HTTP elsewhere)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.states import Lane, WorkKind, WorkOutcome
from ingest.runtime.app import build_app
from ingest.runtime.daemon import Daemon
from ingest.runtime.pipeline import Pipeline
from ingest.runtime.workqueue import Work, WorkQueue, WorkRecord
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.store import LocalStore

WAIT_S = 30  # generous: a failure here is starvation, not slowness


class _BlockingPulls(Pipeline):
    """The pipeline with stand-in pulls: every pull of fleet f waits for release[f]; records who ran at once."""

    def __init__(self, tmp_path: Path, workers: int) -> None:
        settings = load_settings(data_dir=tmp_path, max_concurrent_fleets=workers, shutdown_grace_s=5,
                                 token_key=SecretStr(Fernet.generate_key().decode()))
        self.manifest = Manifest(tmp_path / "m.duckdb")
        super().__init__(build_app(settings, self.manifest, LocalStore(tmp_path / "store"), {}, []))
        self.release: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.running: set[str] = set()
        self.most_at_once = 0
        self.overlap: list[str] = []

    def gate(self, fid: str) -> None:
        self.release[fid], self.started[fid] = threading.Event(), threading.Event()

    def run(self, work: Work, stop: threading.Event, alive: Callable[[], None] = lambda: None) -> WorkRecord:
        fid = work.fleet_id
        assert fid is not None and work.kind.pulls
        with self._lock:
            if fid in self.running:
                self.overlap.append(fid)
            self.running.add(fid)
            self.most_at_once = max(self.most_at_once, len(self.running))
        self.started[fid].set()
        self.release[fid].wait(4 * WAIT_S)  # longer than any wait of the test: no accidental release
        with self._lock:
            self.running.discard(fid)
        return WorkRecord(WorkOutcome.OK, "released")


def test_a_refresh_runs_while_backfills_fill_every_other_worker(tmp_path: Path) -> None:
    service = _BlockingPulls(tmp_path, workers=4)  # one worker kept for refreshes
    daemon = Daemon(service.app, service)
    backfills = [f"big-{i}" for i in range(6)]
    for fid in backfills + ["small"]:
        service.gate(fid)
    daemon.start_workers()
    try:
        for fid in backfills:
            service.backfill(fid)
        for fid in backfills[:3]:
            assert service.started[fid].wait(WAIT_S)
        service.refresh("small")
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
        service.manifest.close()


def test_one_fleet_never_runs_on_two_workers(tmp_path: Path) -> None:
    service = _BlockingPulls(tmp_path, workers=4)
    daemon = Daemon(service.app, service)
    service.gate("acme")
    daemon.start_workers()
    try:
        service.backfill("acme")
        assert service.started["acme"].wait(WAIT_S)
        assert service.refresh("acme")  # queued behind the running backfill
        snap = daemon.queue.snapshot()
        assert snap.running_all == ("backfill:acme",) and snap.queued == ("refresh:acme",)
        service.release["acme"].set()
        done = threading.Event()
        threading.Thread(target=_wait_for_last, args=(daemon, "refresh:acme", done), daemon=True).start()
        assert done.wait(WAIT_S)
        assert service.overlap == []
    finally:
        service.release["acme"].set()
        assert daemon.shutdown()
        service.manifest.close()


def _wait_for_last(daemon: Daemon, key: str, done: threading.Event) -> None:
    while key not in daemon.queue.snapshot().last:
        threading.Event().wait(0.05)
    done.set()


def test_work_is_queued_once_and_a_feature_pass_once_more_behind_a_running_one() -> None:
    q = WorkQueue()
    assert q.submit(Work(WorkKind.FEATURES))
    assert q.take((Lane.FEATURES,), timeout=1) == Work(WorkKind.FEATURES)
    # A feature pass may queue once behind a running one; anything else runs once at a time.
    assert q.submit(Work(WorkKind.FEATURES)) and not q.submit(Work(WorkKind.FEATURES))
    assert q.submit(Work(WorkKind.BACKFILL, "a"))
    assert q.take((Lane.BACKFILL,), timeout=1) == Work(WorkKind.BACKFILL, "a")
    assert not q.submit(Work(WorkKind.BACKFILL, "a"))
    assert q.take((Lane.REFRESH,), timeout=0.1) is None


def test_a_pulled_months_features_run_during_the_fleets_pull_and_the_whole_fleets_wait_for_it() -> None:
    q = WorkQueue()
    pull = Work(WorkKind.BACKFILL, "a")
    assert q.submit(pull) and q.take((Lane.BACKFILL,), timeout=1) == pull
    month, whole = Work(WorkKind.FEATURES, "a", "2025-02"), Work(WorkKind.FEATURES, "a")
    assert q.submit(whole) and q.submit(month)
    # The month's inputs are final: it runs now; the fleet's other windows may still change.
    assert q.take((Lane.FEATURES,), timeout=0.1) == month
    assert q.take_more(Lane.FEATURES) == []
    q.finished(pull, WorkRecord(WorkOutcome.OK))
    assert q.take((Lane.FEATURES,), timeout=1) == whole


def test_queued_feature_items_are_taken_as_one_batch_and_the_queue_reports_idle() -> None:
    q = WorkQueue()
    items = [Work(WorkKind.FEATURES, "a", m) for m in ("2025-01", "2025-02", "2025-03")]
    for w in items:
        assert q.submit(w)
    first = q.take((Lane.FEATURES,), timeout=1)
    assert [first, *q.take_more(Lane.FEATURES)] == items
    assert not q.wait_idle(timeout=0.05)
    for w in items:
        q.finished(w, WorkRecord(WorkOutcome.OK))
    assert q.wait_idle(timeout=1)


def test_a_work_key_names_its_kind_fleet_and_month_and_parses_back() -> None:
    for w in (Work(WorkKind.REFRESH), Work(WorkKind.BACKFILL, "acme"), Work(WorkKind.FEATURES, "acme", "2025-02")):
        assert Work.parse(w.key) == w
    assert Work(WorkKind.FEATURES, "acme", "2025-02").key == "features:acme:2025-02"
