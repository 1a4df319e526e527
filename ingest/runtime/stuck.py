"""Stuck work: a pull or feature pass that stopped making progress, or a TSP whose pulls keep failing.

The daemon's work thread tells a `WorkWatch` when a unit of work starts and ends (one fleet's pull,
one feature pass, with the error a failed pull ended on) and the pull tells it when something
landed (a TSP page answered, a slice added) and when a month of it was complete. A feature
pass's progress is a window recorded in the manifest, which the daemon reads at each check.

A running unit is stuck when either

- nothing landed for `stuck_after_s` (a TSP response that never ends, a trickle, a lock), or
- it has run longer than `factor` times the median of its last runs of the same kind for the
  same fleet (with at least `MIN_HISTORY` of them): slow but moving can still be wrong.

The history is this process's own (the last `HISTORY` runs per kind and fleet since start): a
restarted daemon judges by the first rule alone until it has seen a few runs again.

A stuck unit is only one way a TSP shows trouble. With a request deadline shorter than
`stuck_after_s` (the defaults: 120 s and 900 s) a hung TSP never leaves a unit idle that long: its
pull fails on the deadline first. So a member (a fleet, or "features") is *in trouble* when

- its running unit is stuck (above), or
- its pull failed because a TSP request ran into the request deadline (the TSP hung for a whole
  deadline: that is stuck, however the two settings compare), or
- `failed_pulls` pulls of its TSP's fleets in a row failed on the TSP's side (unavailable,
  malformed, too large, endless pages): no pull of that TSP completed or landed a month between.

Trouble is kept until the member's work really progresses again, never merely because the unit
ended: a stuck unit that moves again (a page lands) clears its own trouble; trouble that outlived
its unit (the pull failed) clears when that fleet lands a complete month or completes a pull.
A page alone does not clear it: a TSP that answers some pages and hangs on one would otherwise
recover and re-alert on every retry. A fleet that leaves (revoked, off-boarded) leaves its trouble.

Alerts are grouped (`IncidentBook`): pulls by TSP, so a TSP that hangs for hundreds of fleets
is one alert and one recovery; feature passes as one group. An incident is open while any
member of its group is in trouble.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

from common.errors import DeadlineExceeded, MalformedResponse, PaginationLoop, ResponseTooLarge, TspUnavailable
from common.states import WorkKind
from ingest.runtime.alerts import Incident, IncidentBook, Webhook

MIN_HISTORY = 3
HISTORY = 20
# A pull that failed on one of these failed because of the TSP, not because of us or the fleet
# (a 4xx is our request, an auth error the fleet's grant, a store or disk error ours).
TSP_SIDE = (TspUnavailable, DeadlineExceeded, MalformedResponse, PaginationLoop, ResponseTooLarge)


@dataclass(frozen=True)
class Unit:
    """One unit of work the watch follows."""
    kind: WorkKind  # a fleet's pull (backfill, refresh) or feature work
    fleet_id: str | None
    tsp: str | None

    @property
    def group(self) -> str:
        """The incident group: pulls by TSP, feature passes together."""
        return f"pull:{self.tsp}" if self.tsp else self.kind.value

    @property
    def member(self) -> str:
        """Who is affected, within the group: the fleet, or the kind for work of no fleet."""
        return self.fleet_id or self.kind.value

    @property
    def label(self) -> str:
        return f"{self.kind.value}:{self.fleet_id}" if self.fleet_id else self.kind.value


@dataclass(frozen=True)
class Stuck:
    unit: Unit
    reason: str
    running_s: float


@dataclass(frozen=True)
class Trouble:
    """Why one member of a group is in trouble, from when, and what clears it."""
    group: str
    member: str
    reason: str
    since: float
    while_running: bool  # its running unit is stuck: clears when that unit moves again


@dataclass
class _Running:
    unit: Unit
    started: float
    last_progress: float


class WorkWatch:
    def __init__(self, stuck_after_s: float, factor: float = 5.0, failed_pulls: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after_s = stuck_after_s
        self.factor = factor
        self.failed_pulls = failed_pulls
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}  # by unit label
        self._history: dict[tuple[WorkKind, str | None], deque[float]] = {}
        self._trouble: dict[tuple[str, str], Trouble] = {}  # by (group, member)
        # Per group: the TSP-side failed pulls since its last completed pull or month, in order.
        self._streak: dict[str, list[tuple[str, str]]] = {}

    def started(self, unit: Unit) -> None:
        now = self._clock()
        with self._lock:
            self._running[unit.label] = _Running(unit, now, now)

    def progressed(self, fleet_id: str | None = None, kind: WorkKind | None = None) -> None:
        """Something landed for the fleet's running pull, or for the running units of `kind`: a unit
        that was stuck while it ran is moving again."""
        now = self._clock()
        with self._lock:
            for r in self._matching(fleet_id, kind):
                r.last_progress = now
                t = self._trouble.get((r.unit.group, r.unit.member))
                if t is not None and t.while_running:
                    del self._trouble[(t.group, t.member)]

    def landed(self, fleet_id: str) -> None:
        """A month of the fleet's pull is complete (every slice committed): real progress, which
        clears the fleet's trouble and its TSP's run of failed pulls."""
        now = self._clock()
        with self._lock:
            for r in self._matching(fleet_id, None):
                r.last_progress = now
                self._settled(r.unit)

    def finished(self, unit: Unit, completed: bool = True, error: BaseException | None = None) -> None:
        """The unit ended. A completed run's duration joins its history and clears its trouble; a
        failed one keeps whatever trouble it had and may open some (see the module's rules)."""
        now = self._clock()
        with self._lock:
            r = self._running.pop(unit.label, None)
            if completed:
                if r is not None:
                    self._history.setdefault((unit.kind, unit.fleet_id), deque(maxlen=HISTORY)).append(now - r.started)
                self._settled(unit)
                return
            key = (unit.group, unit.member)
            had = self._trouble.get(key)
            if had is not None and had.while_running:  # it ended without moving again: still in trouble
                ended = f"; then failed: {_brief(error)}" if error is not None else ""
                self._trouble[key] = Trouble(had.group, had.member, had.reason + ended, had.since, False)
            if not isinstance(error, TSP_SIDE):
                return
            streak = self._streak.setdefault(unit.group, [])
            streak.append((unit.member, _brief(error)))
            if isinstance(error, DeadlineExceeded):
                self._open(unit.group, unit.member, f"pull failed: {_brief(error)}", now)
            if len(streak) >= self.failed_pulls:
                for member, reason in streak:
                    self._open(unit.group, member, f"{len(streak)} pulls of {unit.group} failed in a row; "
                                                   f"this one: {reason}", now)

    def forget(self, members: Iterable[str]) -> None:
        """Members that left (a revoked or off-boarded fleet): their trouble goes with them."""
        gone = set(members)
        with self._lock:
            for key in [k for k in self._trouble if k[1] in gone]:
                del self._trouble[key]
            for group, streak in self._streak.items():
                self._streak[group] = [(m, r) for m, r in streak if m not in gone]

    def check(self) -> list[Stuck]:
        """The running units stuck now; each puts its member in trouble (unless it already is)."""
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
            for s in out:
                key = (s.unit.group, s.unit.member)
                if key not in self._trouble:
                    self._trouble[key] = Trouble(key[0], key[1], s.reason, now, True)
        return sorted(out, key=lambda s: s.unit.label)

    def troubles(self) -> list[Trouble]:
        with self._lock:
            return sorted(self._trouble.values(), key=lambda t: (t.group, t.member))

    def incidents(self) -> list[Incident]:
        """What is wrong now, per group: the input of the stuck alerts' IncidentBook."""
        groups: dict[str, list[Trouble]] = {}
        for t in self.troubles():
            groups.setdefault(t.group, []).append(t)
        return [Incident(g, frozenset(t.member for t in ts), min(ts, key=lambda t: t.since).reason)
                for g, ts in sorted(groups.items())]

    # -------------------------------------------------------------- under the lock
    def _matching(self, fleet_id: str | None, kind: WorkKind | None) -> list[_Running]:
        return [r for r in self._running.values()
                if (fleet_id is not None and r.unit.fleet_id == fleet_id) or (kind is not None and r.unit.kind == kind)]

    def _settled(self, unit: Unit) -> None:
        self._trouble.pop((unit.group, unit.member), None)
        self._streak.pop(unit.group, None)

    def _open(self, group: str, member: str, reason: str, now: float) -> None:
        had = self._trouble.get((group, member))
        self._trouble[(group, member)] = Trouble(group, member, had.reason if had else reason,
                                                 had.since if had else now, False)


def _brief(error: BaseException | None) -> str:
    return (str(error) or type(error).__name__)[:300] if error is not None else "no error given"


def stuck_alerts(webhook: Webhook) -> IncidentBook:
    """One alert when a group's work gets stuck, one recovery when its work progresses again."""
    def describe(inc: Incident) -> str:
        members = sorted(inc.members)
        shown = ", ".join(members[:10]) + (f" and {len(members) - 10} more" if len(members) > 10 else "")
        return f"fleetlake: work stuck ({inc.group}): {shown}" + (f" ({inc.detail})" if inc.detail else "")

    def recovered(inc: Incident) -> str:
        return f"fleetlake: work no longer stuck ({inc.group}); {len(inc.members)} affected in all"

    return IncidentBook(webhook, event="work.stuck", describe=describe, recovered=recovered)
