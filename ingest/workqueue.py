"""The daemon's work queue: where the HTTP API and the scheduler meet the daemon's workers.

Producers (scheduler jobs, API calls) only `submit`; workers `take`. A work item whose key is
already queued or running is not queued twice, and once the queue is closed (shutdown) nothing new
is accepted. The API and the daemon both depend on this module, never on each other.

Work waits in lanes, so that kinds of work share the workers fairly:

- `refresh`: catching up fleets that are live (a monthly refresh, one fleet's refresh): small;
- `backfill`: a fleet's history (pull work): may take hours;
- `features`: feature passes, run by their own worker.

A worker names the lanes it serves, in order of preference: the daemon keeps some pull workers
for `refresh` only, so a wave of backfills can fill every other worker and a refresh still starts
at once. Within a lane, first in first out. Two items of one fleet never run at once (a backfill
and a refresh of one fleet would pull the same slices): such an item waits its turn in the queue.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from common.states import WorkKind, WorkOutcome

LANES = ("refresh", "backfill", "features")


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    fleet_id: str | None = None  # None: every fleet (refresh) or the whole book (features)

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.fleet_id or '*'}"

    @property
    def lane(self) -> str:
        return {WorkKind.REFRESH: "refresh", WorkKind.PULL: "backfill", WorkKind.FEATURES: "features"}[self.kind]

    @classmethod
    def parse(cls, key: str) -> Work:
        kind, _, fleet = key.partition(":")
        return cls(WorkKind(kind), None if fleet == "*" else fleet)

    def touches(self, fleet_id: str) -> bool:
        """Whether this work may read or write `fleet_id`'s data (work for every fleet does)."""
        return self.fleet_id is None or self.fleet_id == fleet_id


class Busy(Exception):
    """Work that could touch a fleet is queued or running."""


@dataclass(frozen=True)
class WorkRecord:
    """How a work item ended, with a line a person can read."""
    outcome: WorkOutcome
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.detail}" if self.detail else self.outcome.value


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
        self._lanes: dict[str, deque[Work]] = {lane: deque() for lane in LANES}
        self._queued: set[str] = set()
        self._running: dict[str, float] = {}  # key -> monotonic start
        self._busy_fleets: set[str] = set()
        self._last: dict[str, WorkRecord] = {}
        self._open = True
        self._held: set[str] = set()  # fleets being off-boarded: no work that touches them starts

    @property
    def accepting(self) -> bool:
        return self._open

    def submit(self, work: Work) -> bool:
        """Queue work unless it is queued or running already, or the queue is closed; True if queued."""
        with self._cond:
            # A feature pass may queue one more behind a running one: windows committed while it
            # runs were not in its plan. Anything else runs at most once at a time.
            rerun = work.kind is WorkKind.FEATURES
            if not self._open or work.key in self._queued or (work.key in self._running and not rerun):
                return False
            if any(work.touches(f) for f in self._held):
                return False  # the scheduler offers it again on its next tick
            self._queued.add(work.key)
            self._lanes[work.lane].append(work)
            self._cond.notify_all()
        return True

    def take(self, lanes: tuple[str, ...] = LANES, timeout: float | None = None) -> Work | None:
        """The next work item of `lanes` (in that order of preference), marked running; None once
        the queue is closed, or when `timeout` passes with nothing to take."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._open:
                work = self._next(lanes)
                if work is not None:
                    self._queued.discard(work.key)
                    self._running[work.key] = time.monotonic()
                    if work.fleet_id:
                        self._busy_fleets.add(work.fleet_id)
                    return work
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def _next(self, lanes: tuple[str, ...]) -> Work | None:
        for lane in lanes:
            items = self._lanes[lane]
            for i, work in enumerate(items):
                if work.fleet_id is None or work.fleet_id not in self._busy_fleets:
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

    def finished(self, work: Work, record: WorkRecord) -> None:
        with self._cond:
            self._running.pop(work.key, None)
            if work.fleet_id:
                self._busy_fleets.discard(work.fleet_id)
            self._last[work.key] = record
            self._cond.notify_all()  # an item of this fleet may be waiting

    def busy_fleets(self) -> frozenset[str]:
        """Fleets some running work item is pulling."""
        with self._cond:
            return frozenset(self._busy_fleets)

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
            running = tuple(k for k, _ in sorted(self._running.items(), key=lambda kv: kv[1]))
            return WorkSnapshot(tuple(sorted(self._queued)), running[0] if running else None, dict(self._last),
                                running)
