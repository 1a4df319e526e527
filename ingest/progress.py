"""A one-line progress bar for long work on a terminal; nothing when output is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream, width
        self.enabled = stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int, rows: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        filled = int(self.width * done / total) if total else self.width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} windows "
                          f"{rows:,} pings")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
