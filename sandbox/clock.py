"""The sandbox's own "now", which tests and the demo set and advance."""

from __future__ import annotations

import calendar
import threading
import time
from datetime import datetime, timezone


class SandboxClock:
    """Real time by default; once set, it is frozen at the set instant until set or advanced again.

    Frozen rather than ticking so that "advance one month, then refresh" finds exactly the new
    month of pings, whatever the wall clock did in between.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._fixed_ms: int | None = None if now is None else _to_ms(now)

    def now_ms(self) -> int:
        with self._lock:
            return self._fixed_ms if self._fixed_ms is not None else int(time.time() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=timezone.utc)

    def set(self, now: datetime) -> None:
        with self._lock:
            self._fixed_ms = _to_ms(now)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            base = self._fixed_ms if self._fixed_ms is not None else int(time.time() * 1000)
            self._fixed_ms = base + int(seconds * 1000)

    def advance_months(self, months: int) -> None:
        """Move to the same day-of-month and time `months` later (clamped to the month's length)."""
        cur = self.now()
        y, m = divmod(cur.month - 1 + months, 12)
        year, month = cur.year + y, m + 1

        day = min(cur.day, calendar.monthrange(year, month)[1])
        self.set(cur.replace(year=year, month=month, day=day))


def _to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("sandbox clock times must be timezone-aware")
    return int(dt.timestamp() * 1000)
