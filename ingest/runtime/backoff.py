"""Failed work waits before it is tried again: a backoff per work key, doubling with each failure in
a row (from `retry_failed_s`, at most 24 h), cleared by a success.

The daemon records how each work item ended (`record`) and its retry job asks whether a key has
waited long enough (`waited_out`). Whoever only needs to know when a key is next tried (the
console's fleets page: "next retry after 14:05") is handed the read-only face, `RetrySchedule`,
so nothing outside the daemon can shorten or clear a wait.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from common.states import WorkOutcome

MAX_BACKOFF_S = 24 * 3600


@dataclass(frozen=True)
class RetryAt:
    """When failed work is tried again: not before `not_before`, after `failures` failures in a row."""
    failures: int
    not_before: datetime


class RetrySchedule(Protocol):
    """The read-only face of the daemon's backoff."""

    def next_retry(self, key: str) -> RetryAt | None:
        """When the work of `key` (a work key: `backfill:F`, `features:F`) is retried; None unless it failed."""


@dataclass
class _Wait:
    failures: int = 0
    not_before: float = 0.0  # time.time()


class Backoffs:
    """The backoff of every work key the daemon has seen end (its worker threads record, its scheduler reads)."""

    def __init__(self, base_s: float, max_s: float = MAX_BACKOFF_S) -> None:
        self.base_s, self.max_s = base_s, max_s
        self._waits: dict[str, _Wait] = {}
        self._lock = threading.Lock()

    def record(self, key: str, outcome: WorkOutcome) -> None:
        with self._lock:
            w = self._waits.setdefault(key, _Wait())
            if outcome.counts_as_failure:
                w.failures += 1
                w.not_before = time.time() + min(self.max_s, self.base_s * 2 ** (w.failures - 1))
            elif outcome is WorkOutcome.OK:
                w.failures, w.not_before = 0, 0.0

    def waited_out(self, key: str) -> bool:
        with self._lock:
            return self._waits.get(key, _Wait()).not_before <= time.time()

    def next_retry(self, key: str) -> RetryAt | None:
        with self._lock:
            w = self._waits.get(key)
            if w is None or not w.failures:
                return None
            return RetryAt(w.failures, datetime.fromtimestamp(w.not_before, timezone.utc))
