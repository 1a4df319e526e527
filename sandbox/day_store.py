"""Generated vehicle-days that every sandbox world of one process shares.

A vehicle-day follows from its fleet's spec, the vehicle and the day alone, and generating one
is most of what serving it costs. A process that serves the same simulated fleet from several
worlds (a test file's sandboxes, each with its own clock and faults; a bench's runs side by
side) generated the same days again for every world. SHARED_DAYS keeps them once, bounded by
the bytes of their pings. A stored day's arrays are read-only, so no world can change another's.

A FleetSimulator made directly (the simulator's own tests of determinism) keeps its days to
itself unless it is given a store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_BYTES = 512 * 2**20  # the pings of about 1,200 vehicle-days at 5 s


class DayStore(Generic[T]):
    """A thread-safe LRU of vehicle-days keyed by (spec, vehicle index, day), bounded in bytes.

    It knows a day only by the arrays it is given with it (the simulator's DayTrack holds them;
    naming that type here would make the simulator and its store import each other)."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._days: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            hit = self._days.get(key)
            if hit is None:
                return None
            self._days.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, track: T, arrays: Sequence[np.ndarray]) -> None:
        for a in arrays:
            a.flags.writeable = False
        size = sum(a.nbytes for a in arrays)
        with self._lock:
            old = self._days.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._days[key] = (track, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._days) > 1:
                self._bytes -= self._days.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._days)


SHARED_DAYS: DayStore[Any] = DayStore()
