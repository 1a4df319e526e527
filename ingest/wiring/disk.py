"""The local disk's health as the work found it: the last full disk a pull or feature run met.

/readyz reports it (`ingest.runtime.probes`) until a later pull or feature run goes through; the
free space itself is measured there, at each probe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from common.errors import DiskFull


@dataclass(frozen=True)
class DiskTrouble:
    """The last time a local write found the disk full."""
    error: DiskFull
    at: datetime


class DiskHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trouble: DiskTrouble | None = None

    @property
    def trouble(self) -> DiskTrouble | None:
        with self._lock:
            return self._trouble

    def full(self, error: DiskFull) -> None:
        with self._lock:
            self._trouble = DiskTrouble(error, datetime.now(timezone.utc))

    def wrote(self) -> None:
        """A whole pull's spooling and merging, or a feature run's outputs, went through."""
        with self._lock:
            self._trouble = None
