"""Client-side pacing per credential: just under the TSP's limit, backing off on 429s.

Additive increase, multiplicative decrease: each 429 cuts the rate by 30%, each success
wins back 1% of the target, never above `target_fraction` of the configured limit.
"""

from __future__ import annotations

import threading
import time


class Throttle:
    def __init__(self, limit_per_s: float, target_fraction: float = 0.95, floor_fraction: float = 0.05) -> None:
        if limit_per_s <= 0:
            raise ValueError("rate limit must be positive")
        self.target = limit_per_s * target_fraction
        self.floor = limit_per_s * floor_fraction
        self.rate = self.target
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for this request's slot (requests are spaced 1/rate apart, no bursts)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)

    def throttled(self, retry_after_s: float | None = None) -> None:
        with self._lock:
            self.rate = max(self.floor, self.rate * 0.7)
            if retry_after_s:
                self._next = max(self._next, time.monotonic() + retry_after_s)

    def succeeded(self) -> None:
        with self._lock:
            self.rate = min(self.target, self.rate + self.target * 0.01)
