"""A one-line progress bar for long work on a terminal; one line per month when output is not one.

It shows what an underwriter waits on: months done of the history, pings landed, the rate and
an ETA from the measured pace (ingest.pull.backfill.PullProgress), not a spinner.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ingest.pull.backfill import PullProgress


def duration(seconds: float | None) -> str:
    """A short human duration ('2h05m', '4m10s', '12s'), or '?' when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def progress_line(p: PullProgress, width: int = 30) -> str:
    filled = int(width * p.months_done / p.months_total) if p.months_total else width
    rate = f"{p.pings_per_min:,.0f}/min" if p.pings_per_min is not None else "?/min"
    on = f" on {p.month}" if p.month else ""
    return (f"[{'#' * filled}{'.' * (width - filled)}] {p.months_done}/{p.months_total} months{on}, "
            f"{p.pings:,} pings, {rate}, ETA {duration(p.eta_s)}")


class ProgressBar:
    """On a terminal, one line redrawn in place; otherwise (a pipe, a log) one line per month pulled,
    so a long backfill is never silent and a log never fills with carriage returns."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream, width
        self.terminal = stream.isatty()
        self._last = 0.0
        self._months_done = -1

    def __call__(self, p: PullProgress) -> None:
        if not self.terminal:
            if p.months_done != self._months_done:  # a month completed (or the first report)
                self._months_done = p.months_done
                self.stream.write(f"{self.label} {progress_line(p, self.width)}\n")
                self.stream.flush()
            return
        now = time.monotonic()
        finished = p.slices_done >= p.slices_total and p.month is None
        if now - self._last < 0.1 and not finished:
            return
        self._last = now
        self.stream.write(f"\r{self.label} {progress_line(p, self.width)}\033[K")
        if finished:
            self.stream.write("\n")
        self.stream.flush()
