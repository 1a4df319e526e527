"""Who drove: a simulated fleet's drivers, their logins (assignments) and duty statuses.

Deterministic from (fleet seed, vehicle, day) like the simulator, and built on its stretches of
driving (sandbox/simulator.py `Stretch`), so each stretch's miles and seconds go to exactly one
driver or to nobody:

- every truck has its own driver; every long-haul truck whose index is a multiple of 3 is driven by a team (its driver
  and a partner, both logged in all day, taking turns stretch by stretch; the one not driving is
  in the sleeper berth);
- a relief driver per four trucks takes over one of them mid-day now and then (at a stop; the
  first driver logs out, the relief logs in);
- on some days nobody logs in: the truck is driven with no driver (unassigned driving, for good);
- on some days the driver logs in only after the first stretch and claims that unidentified
  driving days later (a log edit): before the edit is visible the stretch is unassigned and the
  driver's log lacks it; after it, both say the driver drove. Ground truth is the edited day.

Duty statuses: on duty from the login to the first stretch (pre-trip) and from the last stretch to
the logout; driving over each stretch; between stretches in the sleeper berth while the partner
drives, off duty on a long-haul rest stop of 30 min or more, otherwise on duty (deliveries,
fuel); off duty outside the login. Violations follow from them (sandbox/hos.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sandbox.hos import Duty, Violation, violations
from sandbox.simulator import DAY_S, FleetSimulator, Stretch, Vehicle, month_bounds_ms

PRE_TRIP_S = 15 * 60
POST_TRIP_S = 15 * 60
CHANGEOVER_S = 60  # a driver logs out (in) this long after (before) the stretch ends (starts)
SWAP_SHARE = 0.5  # of a relief group's eligible days (one truck of four a day)
NOBODY_SHARE = 0.03  # days a truck is driven with nobody logged in
LATE_LOGIN_SHARE = 0.06  # days the first stretch is claimed later, by a log edit
EDIT_DELAY_DAYS = (1, 10)  # the edit becomes visible this many days after the day's block ends
HISTORY_PAD_DAYS = 9  # duty statuses read before a month so shifts and cycles carry into it
# After this long past a month's end, every log edit of its days (and of the pad before it) is
# visible, so what the TSP knows of the month is what is finally known: its violations are kept.
SETTLED_AFTER_S = (EDIT_DELAY_DAYS[1] + 4) * DAY_S
# Invented names, drawn per fleet (seeded): a fleet's drivers are people with names of their own,
# so a test can tell one fleet's from another's (an off-boarded fleet's must leave no trace).
FIRST_NAMES = ("Ava", "Ben", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi", "Lena",
               "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Umar", "Vera", "Wes", "Xena",
               "Yusuf", "Zoe")
LAST_NAMES = ("Abbott", "Brennan", "Castillo", "Dalton", "Eriksen", "Fontaine", "Garza", "Haddad", "Ivanova",
              "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Ramsey",
              "Sorensen", "Takahashi", "Ulrich", "Vasquez", "Whitfield", "Yilmaz", "Zielinski")


@dataclass(frozen=True)
class Driver:
    index: int
    name: str
    role: str  # own | partner | relief
    home_vehicle: int  # the truck whose home terminal is the driver's (time zone of log days)


@dataclass(frozen=True)
class Assignment:
    driver: int
    vehicle: int
    start_s: int
    end_s: int


@dataclass(frozen=True)
class Edit:
    visible_s: int  # when the edited log reaches the TSP
    driver: int


@dataclass(frozen=True)
class CrewDay:
    """One vehicle-day's crew, as the TSP knows it at some time."""

    stretches: tuple[Stretch, ...]
    driven_by: tuple[int | None, ...]  # per stretch: the driver, or None (unassigned)
    assignments: tuple[Assignment, ...]
    edit: Edit | None  # a late edit of this day, if any (None: the day never changes)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([k & 0xFFFFFFFF for k in key])


def _names(seed: int) -> Callable[[int], str]:
    """Driver k's invented "First Last", distinct within the fleet (a seeded order of all pairs;
    past them, the same pairs with a number)."""
    order = _rng(seed, 0x4E414D45).permutation(len(FIRST_NAMES) * len(LAST_NAMES))

    def name(k: int) -> str:
        i = int(order[k % order.size])
        first, last = FIRST_NAMES[i // len(LAST_NAMES)], LAST_NAMES[i % len(LAST_NAMES)]
        return f"{first} {last}" if k < order.size else f"{first} {last} {k // order.size + 1}"
    return name


class Crew:
    """The drivers of one simulated fleet and what they did, lazily, day by day."""

    def __init__(self, sim: FleetSimulator) -> None:
        self.sim = sim
        n = len(sim.vehicles)
        self.team_vehicles = tuple(v.index for v in sim.vehicles if v.kind == "longhaul" and v.index % 3 == 0)
        name = _names(sim.spec.seed)
        drivers = [Driver(i, name(i), "own", i) for i in range(n)]
        self.partner_of: dict[int, int] = {}
        for vi in self.team_vehicles:
            self.partner_of[vi] = len(drivers)
            drivers.append(Driver(len(drivers), name(len(drivers)), "partner", vi))
        self.relief_of: dict[int, int] = {}
        for g in range(math.ceil(n / 4)):
            idx = len(drivers)
            drivers.append(Driver(idx, name(idx), "relief", 4 * g))
            for vi in range(4 * g, min(n, 4 * g + 4)):
                self.relief_of[vi] = idx
        self.drivers = tuple(drivers)
        self._days: dict[tuple[int, int, bool], CrewDay] = {}
        self._stretches: dict[tuple[int, int], tuple[Stretch, ...]] = {}
        self._settled: dict[tuple[int, str], list[Violation]] = {}  # violations of settled months
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- one vehicle-day
    def stretches(self, v: Vehicle, day: int) -> tuple[Stretch, ...]:
        key = (v.index, day)
        with self._lock:
            hit = self._stretches.get(key)
        if hit is None:
            hit = self.sim.day(v, day).stretches
            with self._lock:
                self._stretches[key] = hit
        return hit

    def day(self, v: Vehicle, day: int, edited: bool = True) -> CrewDay:
        """The crew of a vehicle-day: as finally known (edited) or as first logged."""
        key = (v.index, day, edited)
        with self._lock:
            hit = self._days.get(key)
        if hit is None:
            hit = self._make_day(v, day, edited)
            with self._lock:
                self._days[key] = hit
        return hit

    def day_at(self, v: Vehicle, day: int, now_s: int) -> CrewDay:
        """The crew of a vehicle-day as the TSP knows it at `now_s`."""
        final = self.day(v, day, True)
        return final if final.edit is None or now_s >= final.edit.visible_s else self.day(v, day, False)

    def _make_day(self, v: Vehicle, day: int, edited: bool) -> CrewDay:
        st = self.stretches(v, day)
        if not st:
            return CrewDay((), (), (), None)
        r = _rng(self.sim.spec.seed, v.index, day, 11)
        u_nobody, u_swap, u_late, u_delay = (float(x) for x in r.random(4))
        own = v.index
        first, last = st[0].start_s, st[-1].end_s
        if u_nobody < NOBODY_SHARE:
            return CrewDay(st, (None,) * len(st), (), None)
        if own in self.partner_of:
            partner = self.partner_of[own]
            by = tuple(own if k % 2 == 0 else partner for k in range(len(st)))
            logins = (Assignment(own, own, first - PRE_TRIP_S, last + POST_TRIP_S),
                      Assignment(partner, own, first - PRE_TRIP_S, last + POST_TRIP_S))
            return CrewDay(st, by, logins, None)
        if len(st) >= 2 and (day % 4) == (own % 4) and u_swap < SWAP_SHARE:
            k = len(st) // 2
            relief = self.relief_of[own]
            by = tuple(own if i < k else relief for i in range(len(st)))
            logins = (Assignment(own, own, first - PRE_TRIP_S, st[k - 1].end_s + CHANGEOVER_S),
                      Assignment(relief, own, st[k].start_s - CHANGEOVER_S, last + POST_TRIP_S))
            return CrewDay(st, by, logins, None)
        if len(st) >= 2 and u_late < LATE_LOGIN_SHARE:
            lo, hi = EDIT_DELAY_DAYS
            block_end = self.sim.block_start_s(v, day) + DAY_S
            edit = Edit(block_end + (lo + int(u_delay * (hi - lo + 1))) * DAY_S, own)
            if edited:
                return CrewDay(st, (own,) * len(st), (Assignment(own, own, first - PRE_TRIP_S, last + POST_TRIP_S),),
                               edit)
            return CrewDay(st, (None, *(own,) * (len(st) - 1)),
                           (Assignment(own, own, st[1].start_s - CHANGEOVER_S, last + POST_TRIP_S),), edit)
        return CrewDay(st, (own,) * len(st), (Assignment(own, own, first - PRE_TRIP_S, last + POST_TRIP_S),), None)

    # ----------------------------------------------------------------- one driver
    def vehicles_of(self, driver: int) -> list[Vehicle]:
        d = self.drivers[driver]
        if d.role == "relief":
            return [self.sim.vehicles[i] for i, r in self.relief_of.items() if r == driver]
        return [self.sim.vehicles[d.home_vehicle]]

    def days_of(self, v: Vehicle, start_s: int, end_s: int) -> range:
        lo = max(start_s, self.sim.spec.history_start_s)
        if end_s <= lo:
            return range(0)
        return range(self.sim.day_of(v, lo), self.sim.day_of(v, end_s - 1) + 1)

    def duties(self, driver: int, start_s: int, end_s: int, now_s: int | None = None) -> list[Duty]:
        """The driver's duty statuses overlapping [start_s, end_s), as known at `now_s` (None: as
        finally known), cut at `now_s`; gaps between them are off duty."""
        out: list[Duty] = []
        for v in self.vehicles_of(driver):
            for day in self.days_of(v, start_s - DAY_S, end_s):
                cd = self.day(v, day) if now_s is None else self.day_at(v, day, now_s)
                for a in cd.assignments:
                    if a.driver == driver:
                        out.extend(_login_duties(cd, a, v))
        out.sort(key=lambda d: d.start_s)
        cut = end_s if now_s is None else min(end_s, now_s)
        return [Duty(max(d.start_s, start_s), min(d.end_s, cut), d.status, d.vehicle)
                for d in out if d.end_s > start_s and d.start_s < cut]

    def violations(self, driver: int, month: str, now_s: int | None = None) -> list[Violation]:
        """The driver's violations that began in `month` (as known at `now_s`; None: finally).

        The rules read the statuses from HISTORY_PAD_DAYS before the month, so a shift or a cycle
        that began before it counts; every caller asks month by month, so the served violations
        and the ground truth are the same computation.
        """
        lo, hi = (x // 1000 for x in month_bounds_ms(month))
        if now_s is not None and now_s < hi + SETTLED_AFTER_S:
            return self._violations(driver, lo, hi, now_s)
        key = (driver, month)  # settled: the same answer for every later now_s, so computed once
        with self._lock:
            hit = self._settled.get(key)
        if hit is None:
            hit = self._violations(driver, lo, hi, None)
            with self._lock:
                self._settled[key] = hit
        return list(hit)

    def _violations(self, driver: int, lo: int, hi: int, now_s: int | None) -> list[Violation]:
        duties = self.duties(driver, lo - HISTORY_PAD_DAYS * DAY_S, hi, now_s)
        offset = self.sim.vehicles[self.drivers[driver].home_vehicle].home.utc_offset_h
        cut = hi if now_s is None else min(hi, now_s)
        return [x for x in violations(duties, offset) if lo <= x.start_s < cut]


def _login_duties(cd: CrewDay, a: Assignment, v: Vehicle) -> list[Duty]:
    """The duty statuses of one login: its own stretches driving, the time between them as the
    module docstring says."""
    mine = [s for s, d in zip(cd.stretches, cd.driven_by) if d == a.driver and a.start_s <= s.start_s < a.end_s]
    others = [s for s, d in zip(cd.stretches, cd.driven_by) if d != a.driver]
    out: list[Duty] = []
    t = a.start_s
    for i, s in enumerate([*mine, None]):
        gap_end = s.start_s if s is not None else a.end_s
        if gap_end > t:
            if any(o.start_s < gap_end and o.end_s > t for o in others if o is not None):
                status = "sleeper"
            elif 0 < i < len(mine) and v.kind == "longhaul" and gap_end - t >= 30 * 60:
                status = "off_duty"
            else:
                status = "on_duty"
            out.append(Duty(t, gap_end, status, v.index))
        if s is not None:
            out.append(Duty(s.start_s, s.end_s, "driving", v.index))
            t = s.end_s
    return out


def driver_truth(crew: Crew, month: str) -> dict[int | None, dict[str, float]]:
    """Per driver (None: unassigned driving) of one month: miles, driving seconds and violations
    by kind, from the days as finally known."""
    lo, hi = (x // 1000 for x in month_bounds_ms(month))
    out: dict[int | None, dict[str, float]] = {}
    for v in crew.sim.vehicles:
        for day in crew.days_of(v, lo - DAY_S, hi):
            cd = crew.day(v, day)
            for s, d in zip(cd.stretches, cd.driven_by):
                if month in s.miles:
                    row = out.setdefault(d, {"miles": 0.0, "driving_s": 0.0})
                    row["miles"] += s.miles[month]
                    row["driving_s"] += s.driving_s[month]
    for drv in crew.drivers:
        for x in crew.violations(drv.index, month):
            row = out.setdefault(drv.index, {"miles": 0.0, "driving_s": 0.0})
            row[x.kind] = row.get(x.kind, 0) + 1
    return out
