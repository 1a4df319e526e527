"""The daemon's work queue: where the HTTP API and the scheduler meet the one work thread.

Producers (scheduler jobs, API calls) only `submit`; the single consumer `take`s. A work item
whose key is already queued or running is not queued twice, and once the queue is closed
(shutdown) nothing new is accepted. The API and the daemon both depend on this module, never
on each other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from common.states import WorkKind, WorkOutcome


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    fleet_id: str | None = None  # None: every fleet (refresh) or the whole book (features)

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.fleet_id or '*'}"

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
    running: str | None
    last: dict[str, WorkRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"queued": list(self.queued), "running": self.running,
                "last": {k: str(v) for k, v in sorted(self.last.items())}}


class WorkQueue:
    def __init__(self) -> None:
        self._items: queue.Queue[Work | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._running: str | None = None
        self._last: dict[str, WorkRecord] = {}
        self._open = True
        self._held: set[str] = set()  # fleets being off-boarded: no work that touches them starts

    @property
    def accepting(self) -> bool:
        return self._open

    def submit(self, work: Work) -> bool:
        """Queue work unless it is queued or running already, or the queue is closed; True if queued."""
        with self._lock:
            if not self._open or work.key in self._queued or work.key == self._running:
                return False
            if any(work.touches(f) for f in self._held):
                return False  # the scheduler offers it again on its next tick
            self._queued.add(work.key)
        self._items.put(work)
        return True

    def take(self) -> Work | None:
        """The next work item, marked running; None once the queue is closed and drained."""
        work = self._items.get()
        if work is not None:
            with self._lock:
                self._queued.discard(work.key)
                self._running = work.key
        return work

    @contextmanager
    def exclusive(self, fleet_id: str) -> Iterator[None]:
        """Hold `fleet_id`: raise Busy if work that touches it is queued or running, else refuse
        such work until the block ends (an off-boarding runs in it, outside the work thread)."""
        with self._lock:
            busy = [k for k in (*sorted(self._queued), *([self._running] if self._running else []))
                    if Work.parse(k).touches(fleet_id)]
            if busy:
                raise Busy(", ".join(busy))
            self._held.add(fleet_id)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(fleet_id)

    def finished(self, work: Work, record: WorkRecord) -> None:
        with self._lock:
            self._running = None
            self._last[work.key] = record

    def close(self) -> None:
        """Accept nothing more and drop what is queued (the manifest rediscovers it on the next start)."""
        with self._lock:
            self._open = False
            self._queued.clear()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._items.put(None)

    def snapshot(self) -> WorkSnapshot:
        with self._lock:
            return WorkSnapshot(tuple(sorted(self._queued)), self._running, dict(self._last))
