"""The work queue: the one place work waits, runs, and is known to be running.

Producers only `submit` (the pipeline, `ingest.runtime.pipeline`, is the one that does); workers
`take`. A work item whose key is already queued or running is not queued twice, and once the
queue is closed (shutdown) nothing new is accepted. Whether a fleet is busy, where its running
pull stands and whether it is stuck are answered here and nowhere else (`LiveWork` for the reads).

Work waits in lanes (`common.states.Lane`), so that kinds of work share the workers fairly:

- `refresh`: catching up fleets that are live (a monthly refresh, one fleet's refresh): small;
- `backfill`: a fleet's history: may take hours;
- `features`: feature work items, run by their own worker.

A worker names the lanes it serves, in order of preference: the daemon keeps some pull workers
for `refresh` only, so a wave of backfills can fill every other worker and a refresh still starts
at once. Within a lane, first in first out. Two pulls of one fleet never run at once (a backfill
and a refresh of one fleet would pull the same slices): such an item waits its turn. A feature
item of a pulled month runs while the fleet's pull goes on (that month's inputs are final); one
for a whole fleet waits for the fleet's pull to end (its months may still change).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from common import names
from common.states import Lane, WorkKind, WorkOutcome
from ingest.engine.runs import FeatureReport
from ingest.pull.backfill import PullProgress
from ingest.pull.pulls import PullOutcome

LANES = (Lane.REFRESH, Lane.BACKFILL, Lane.FEATURES)
_LANE = {WorkKind.REFRESH: Lane.REFRESH, WorkKind.BACKFILL: Lane.BACKFILL, WorkKind.FEATURES: Lane.FEATURES}


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    fleet_id: str | None = None  # None: every fleet (a refresh fans out; features: every pending window)
    month: str | None = None     # features only: the pulled month whose windows run (None: all of the fleet's)

    def __post_init__(self) -> None:
        if self.month is not None and (self.kind is not WorkKind.FEATURES or self.fleet_id is None):
            raise ValueError("only a fleet's feature work names a month")

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.fleet_id or '*'}" + (f":{self.month}" if self.month else "")

    @property
    def lane(self) -> Lane:
        return _LANE[self.kind]

    @property
    def waits_for_pull(self) -> bool:
        """Whether it must not run while its fleet is being pulled."""
        return self.fleet_id is not None and (self.kind.pulls or self.month is None)

    @classmethod
    def parse(cls, key: str) -> Work:
        kind, _, rest = key.partition(":")
        fleet, _, month = rest.partition(":")
        return cls(WorkKind(kind), None if fleet == "*" else names.fleet_id(fleet), names.month(month) if month else None)

    def touches(self, fleet_id: str) -> bool:
        """Whether this work may read or write `fleet_id`'s data (work for every fleet does)."""
        return self.fleet_id is None or self.fleet_id == fleet_id


class Busy(Exception):
    """Work that could touch a fleet is queued or running."""


@dataclass(frozen=True)
class WorkRecord:
    """How a work item ended, with a line a person can read (and, for callers in this process, what it did)."""
    outcome: WorkOutcome
    detail: str = ""
    result: PullOutcome | FeatureReport | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.detail}" if self.detail else self.outcome.value


@dataclass
class _Running:
    work: Work
    started: float  # monotonic
    progress: PullProgress | None = None


@dataclass(frozen=True)
class WorkSnapshot:
    queued: tuple[str, ...]
    running: str | None  # the longest-running item (one line for a person); `running_all` has every one
    last: dict[str, WorkRecord] = field(default_factory=dict)
    running_all: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"queued": list(self.queued), "running": self.running, "running_all": list(self.running_all),
                "last": {k: str(v) for k, v in sorted(self.last.items())}}


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lanes: dict[Lane, deque[Work]] = {lane: deque() for lane in LANES}
        self._queued: set[str] = set()
        self._running: dict[str, _Running] = {}
        self._pulling: set[str] = set()  # fleets a running pull item holds
        self._last: dict[str, WorkRecord] = {}
        self._stuck: dict[str, str] = {}  # fleet id (or "features") -> why, from the daemon's last check
        self._open = True
        self._held: set[str] = set()  # fleets being off-boarded: no work that touches them starts

    @property
    def accepting(self) -> bool:
        return self._open

    def submit(self, work: Work) -> bool:
        """Queue work unless it is queued or running already, or the queue is closed; True if queued."""
        with self._cond:
            # Feature work may queue once more behind a running item of the same key: windows
            # committed while it runs were not in its plan. Anything else runs at most once at a time.
            rerun = work.kind is WorkKind.FEATURES
            if not self._open or work.key in self._queued or (work.key in self._running and not rerun):
                return False
            if any(work.touches(f) for f in self._held):
                return False  # the scheduler offers it again on its next tick
            self._queued.add(work.key)
            self._lanes[work.lane].append(work)
            self._cond.notify_all()
        return True

    def take(self, lanes: tuple[Lane, ...] = LANES, timeout: float | None = None) -> Work | None:
        """The next work item of `lanes` (in that order of preference), marked running; None once
        the queue is closed, or when `timeout` passes with nothing to take."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._open:
                work = self._next(lanes)
                if work is not None:
                    self._start(work)
                    return work
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def take_more(self, lane: Lane) -> list[Work]:
        """Every other item of `lane` that may run now, marked running (feature items run as one batch)."""
        with self._cond:
            out = []
            while self._open and (work := self._next((lane,))) is not None:
                self._start(work)
                out.append(work)
            return out

    def _start(self, work: Work) -> None:
        self._queued.discard(work.key)
        self._running[work.key] = _Running(work, time.monotonic())
        if work.kind.pulls and work.fleet_id:
            self._pulling.add(work.fleet_id)

    def _next(self, lanes: tuple[Lane, ...]) -> Work | None:
        for lane in lanes:
            items = self._lanes[lane]
            for i, work in enumerate(items):
                if not (work.waits_for_pull and work.fleet_id in self._pulling):
                    del items[i]
                    return work
        return None

    @contextmanager
    def exclusive(self, fleet_id: str) -> Iterator[None]:
        """Hold `fleet_id`: raise Busy if work that touches it is queued or running, else refuse
        such work until the block ends (an off-boarding runs in it, outside the work thread)."""
        with self._cond:
            busy = [k for k in (*sorted(self._queued), *sorted(self._running))
                    if Work.parse(k).touches(fleet_id)]
            if busy:
                raise Busy(", ".join(busy))
            self._held.add(fleet_id)
        try:
            yield
        finally:
            with self._cond:
                self._held.discard(fleet_id)

    def progressed(self, work: Work, progress: PullProgress) -> None:
        """Where a running pull stands now (readiness and the API read it)."""
        with self._cond:
            r = self._running.get(work.key)
            if r is not None:
                r.progress = progress

    def finished(self, work: Work, record: WorkRecord) -> None:
        with self._cond:
            self._running.pop(work.key, None)
            if work.kind.pulls and work.fleet_id:
                self._pulling.discard(work.fleet_id)
            self._last[work.key] = record
            self._cond.notify_all()  # an item of this fleet may be waiting, and so may wait_idle

    def pulling(self) -> frozenset[str]:
        """Fleets some running work item is pulling."""
        with self._cond:
            return frozenset(self._pulling)

    def pull_progress(self, fleet_id: str) -> PullProgress | None:
        with self._cond:
            for r in self._running.values():
                if r.work.kind.pulls and r.work.fleet_id == fleet_id:
                    return r.progress
            return None

    def mark_stuck(self, stuck: dict[str, str]) -> None:
        """What the daemon's stuck-work check found: fleet id (or "features") -> why."""
        with self._cond:
            self._stuck = dict(stuck)

    def stuck(self, fleet_id: str) -> str | None:
        with self._cond:
            return self._stuck.get(fleet_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (True), or `timeout` passes (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queued or self._running:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Accept nothing more and drop what is queued (the manifest rediscovers it on the next start)."""
        with self._cond:
            self._open = False
            self._queued.clear()
            for items in self._lanes.values():
                items.clear()
            self._cond.notify_all()

    def snapshot(self) -> WorkSnapshot:
        with self._cond:
            running = tuple(k for k, _ in sorted(self._running.items(), key=lambda kv: kv[1].started))
            return WorkSnapshot(tuple(sorted(self._queued)), running[0] if running else None, dict(self._last),
                                running)
