"""Stuck work: a pull or feature pass that stopped making progress, or runs far longer than usual.

The daemon's work thread tells a `WorkWatch` when a unit of work starts and ends (one fleet's pull,
one feature pass) and the pull tells it when something landed (a TSP page answered, a slice
added). A feature pass's progress is a window recorded in the manifest, which the daemon reads
at each check. A unit is stuck when either

- nothing landed for `stuck_after_s` (a TSP response that never ends, a trickle, a lock), or
- it has run longer than `factor` times the median of its last runs of the same kind for the
  same fleet (with at least `MIN_HISTORY` of them): slow but moving can still be wrong.

The history is this process's own (the last `HISTORY` runs per kind and fleet since start): a
restarted daemon judges by the first rule alone until it has seen a few runs again.

Alerts are grouped (`IncidentBook`): pulls by TSP, so a TSP that hangs for hundreds of fleets
is one alert and one recovery; feature passes as one group.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ingest.runtime.alerts import Incident, IncidentBook, Webhook

MIN_HISTORY = 3
HISTORY = 20


@dataclass(frozen=True)
class Unit:
    """One unit of work the watch follows."""
    kind: str  # "backfill", "refresh" (a fleet's pull) or "features" (a pass over every fleet)
    fleet_id: str | None
    tsp: str | None

    @property
    def group(self) -> str:
        """The incident group: pulls by TSP, feature passes together."""
        return f"pull:{self.tsp}" if self.tsp else self.kind

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.fleet_id}" if self.fleet_id else self.kind


@dataclass(frozen=True)
class Stuck:
    unit: Unit
    reason: str
    running_s: float


@dataclass
class _Running:
    unit: Unit
    started: float
    last_progress: float


class WorkWatch:
    def __init__(self, stuck_after_s: float, factor: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after_s = stuck_after_s
        self.factor = factor
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}  # by unit label
        self._history: dict[tuple[str, str | None], deque[float]] = {}

    def started(self, unit: Unit) -> None:
        now = self._clock()
        with self._lock:
            self._running[unit.label] = _Running(unit, now, now)

    def progressed(self, fleet_id: str | None = None, kind: str | None = None) -> None:
        """Something landed for the fleet's running pull, or for the running units of `kind`."""
        now = self._clock()
        with self._lock:
            for r in self._running.values():
                if (fleet_id is not None and r.unit.fleet_id == fleet_id) or (kind is not None and r.unit.kind == kind):
                    r.last_progress = now

    def finished(self, unit: Unit, completed: bool = True) -> None:
        """The unit ended; a completed run's duration joins its history (a failed one says nothing of it)."""
        now = self._clock()
        with self._lock:
            r = self._running.pop(unit.label, None)
            if r is not None and completed:
                self._history.setdefault((unit.kind, unit.fleet_id), deque(maxlen=HISTORY)).append(now - r.started)

    def check(self) -> list[Stuck]:
        now = self._clock()
        out = []
        with self._lock:
            for r in self._running.values():
                idle, running = now - r.last_progress, now - r.started
                past = self._history.get((r.unit.kind, r.unit.fleet_id), ())
                if idle >= self.stuck_after_s:
                    out.append(Stuck(r.unit, f"no progress for {idle:.0f} s", running))
                elif len(past) >= MIN_HISTORY and running > self.factor * statistics.median(past):
                    out.append(Stuck(r.unit, f"running {running:.0f} s, over {self.factor:g}x the median "
                                             f"{statistics.median(past):.0f} s of its last {len(past)} runs", running))
        return sorted(out, key=lambda s: s.unit.label)


def stuck_alerts(webhook: Webhook) -> IncidentBook:
    """One alert when a group's work gets stuck, one recovery when none of it is stuck any more."""
    def describe(inc: Incident) -> str:
        members = sorted(inc.members)
        shown = ", ".join(members[:10]) + (f" and {len(members) - 10} more" if len(members) > 10 else "")
        return f"fleetlake: work stuck ({inc.group}): {shown}"

    def recovered(inc: Incident) -> str:
        return f"fleetlake: work no longer stuck ({inc.group}); {len(inc.members)} affected in all"

    return IncidentBook(webhook, event="work.stuck", describe=describe, recovered=recovered)


def incidents(stuck: list[Stuck]) -> list[Incident]:
    groups: dict[str, set[str]] = {}
    for s in stuck:
        groups.setdefault(s.unit.group, set()).add(s.unit.fleet_id or s.unit.kind)
    return [Incident(g, frozenset(m)) for g, m in sorted(groups.items())]
