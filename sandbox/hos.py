"""Hours-of-service rules (FMCSA, 49 CFR 395.3, property-carrying) over one driver's duty statuses.

The sandbox's violations are computed from the simulated duty statuses with these rules, not
drawn at random, so a violation in the served data is one the simulated driving really
committed (sources and the simplifications below: docs/sandbox.md):

- a shift begins with the first on-duty or driving time after 10 consecutive hours off duty or in
  the sleeper berth; in it a driver may drive at most 11 hours (`driving_11`) and not after the
  14th hour since the shift began (`duty_14`, off-duty time does not extend it);
- driving is not allowed once 8 hours of driving have passed without an interruption of at least
  30 consecutive minutes not driving (`break_30`; on duty, off duty or sleeper all count);
- driving is not allowed after 70 hours on duty in 8 consecutive days (`cycle_70`; the days are
  the driver's home-terminal calendar days); 34 consecutive hours off restart the count.

Simplified: no split sleeper berth pairing, no adverse-conditions or short-haul exceptions.
Each rule is one violation per shift (break_30: per 8 h run without a break), starting when the
limit is crossed, its duration the driving done past it.
"""

from __future__ import annotations

from dataclasses import dataclass

H = 3600
SHIFT_RESET_S = 10 * H
CYCLE_RESET_S = 34 * H
DRIVING_LIMIT_S = 11 * H
WINDOW_S = 14 * H
BREAK_AFTER_S = 8 * H
BREAK_S = 30 * 60
CYCLE_LIMIT_S = 70 * H
CYCLE_DAYS = 8

STATUSES = ("off_duty", "sleeper", "driving", "on_duty")
RESTING = ("off_duty", "sleeper")
KINDS = ("driving_11", "duty_14", "break_30", "cycle_70")


@dataclass(frozen=True)
class Duty:
    start_s: int
    end_s: int
    status: str  # one of STATUSES
    vehicle: int | None = None  # the vehicle's index while on duty in one


@dataclass(frozen=True)
class Violation:
    kind: str  # one of KINDS
    start_s: int
    duration_s: int


def violations(duties: list[Duty], utc_offset_h: int) -> list[Violation]:
    """Every violation of the duty statuses (sorted, not overlapping; gaps are off duty)."""
    found: list[Violation] = []
    open_: dict[str, list[int]] = {}  # kind -> [start, duration] of the violation being extended
    shift_start: int | None = None
    shift_driving = 0
    since_break = 0
    rest_since: int | None = -10**12  # start of the current rest run (fully rested at first)
    idle_since: int | None = None  # start of the current run of not driving
    on_duty: list[tuple[int, int]] = []  # on-duty and driving time since the last cycle restart

    def close(*kinds: str) -> None:
        for k in kinds:
            v = open_.pop(k, None)
            if v is not None:
                found.append(Violation(k, v[0], v[1]))

    def add(kind: str, start: int, duration: int) -> None:
        if kind in open_:
            open_[kind][1] += duration
        else:
            open_[kind] = [start, duration]

    for d in duties:
        if d.end_s <= d.start_s:
            continue
        if d.status in RESTING:
            if rest_since is None:
                rest_since = d.start_s
            if idle_since is None:
                idle_since = d.start_s
            continue
        # on duty or driving: a rest run before it may reset the shift, the cycle and the break
        if rest_since is not None:
            rest = d.start_s - rest_since
            if rest >= CYCLE_RESET_S:
                on_duty.clear()
                close("cycle_70")
            if rest >= SHIFT_RESET_S:
                close("driving_11", "duty_14", "cycle_70")
                shift_start, shift_driving = None, 0
            rest_since = None
        if shift_start is None:
            shift_start = d.start_s
        if d.status != "driving":
            if idle_since is None:
                idle_since = d.start_s
            on_duty.append((d.start_s, d.end_s))
            continue
        if idle_since is not None and d.start_s - idle_since >= BREAK_S:
            since_break = 0
            close("break_30")
        idle_since = None
        s, e = d.start_s, d.end_s
        if shift_driving + (e - s) > DRIVING_LIMIT_S:
            at = s + max(0, DRIVING_LIMIT_S - shift_driving)
            add("driving_11", at, e - at)
        if e > shift_start + WINDOW_S:
            at = max(s, shift_start + WINDOW_S)
            add("duty_14", at, e - at)
        if since_break + (e - s) > BREAK_AFTER_S:
            at = s + max(0, BREAK_AFTER_S - since_break)
            add("break_30", at, e - at)
        used = _cycle_used(on_duty, s, utc_offset_h)
        if used + (e - s) > CYCLE_LIMIT_S:
            at = s + max(0, CYCLE_LIMIT_S - used)
            add("cycle_70", at, e - at)
        shift_driving += e - s
        since_break += e - s
        on_duty.append((s, e))
    close(*list(open_))
    return sorted(found, key=lambda v: (v.start_s, v.kind))


def _cycle_used(on_duty: list[tuple[int, int]], t: int, utc_offset_h: int) -> int:
    """On-duty seconds in the 8 home-terminal days that end with the day of `t`, before `t`."""
    day0 = ((t + utc_offset_h * H) // 86_400 - (CYCLE_DAYS - 1)) * 86_400 - utc_offset_h * H
    return sum(max(0, min(e, t) - max(s, day0)) for s, e in on_duty if e > day0)
