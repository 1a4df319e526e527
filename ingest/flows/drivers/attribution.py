"""Who drove a vehicle when: a month's assignments (and duty-status logs) as a timeline per vehicle.

Each stretch of driving belongs to the driver assigned to the vehicle at that time. The rules:

- a time no assignment covers belongs to nobody: it is the null-driver bucket, counted and never
  guessed (not the previous driver, not the vehicle's usual one);
- where assignments overlap (a team both logged in; a login the TSP never closed before the next
  one), the driver whose duty-status log says `driving` on this vehicle at that time wins: the log
  is the driver's own record of who had the wheel; failing that, the assignment that started
  latest (the newer login), and among equal starts the smallest driver id, so the answer depends
  on the records alone and never on their order;
- an assignment without an end lasts to the end of the month (the TSP says it is still open).

Times are UTC epoch milliseconds; intervals are half-open [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FOREVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Timeline:
    """One vehicle's drivers: `driver[k]` drove in [bounds[k], bounds[k + 1]) (None: nobody)."""

    bounds: np.ndarray  # int64, sorted; len(driver) + 1 of them
    driver: tuple[str | None, ...]

    def at(self, ts_ms: np.ndarray) -> np.ndarray:
        """The index into `drivers` of the driver at each time; -1 for nobody (object ids below)."""
        k = np.searchsorted(self.bounds, ts_ms, side="right") - 1
        inside = (k >= 0) & (k < len(self.driver))
        return np.where(inside, k, -1)

    def drivers_at(self, ts_ms: np.ndarray) -> list[str | None]:
        k = self.at(ts_ms)
        return [self.driver[i] if i >= 0 else None for i in k.tolist()]


def _col(table: pa.Table, name: str) -> list[Any]:
    col = table[name]
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, pa.string())
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.int64())
    return col.to_pylist()


def timelines(assignments: pa.Table | None, hos_logs: pa.Table | None, month_end_ms: int) -> dict[str, Timeline]:
    """vehicle id -> its timeline of the month, from the month's committed assignments and logs."""
    if assignments is None or assignments.num_rows == 0:
        return {}
    by_vehicle: dict[str, list[tuple[int, int, str]]] = {}
    for v, d, s, e in zip(_col(assignments, "vehicle_id"), _col(assignments, "driver_id"),
                          _col(assignments, "start_ts"), _col(assignments, "end_ts")):
        by_vehicle.setdefault(v, []).append((s, month_end_ms if e is None else e, d))
    driving: dict[str, list[tuple[int, int, str]]] = {}
    if hos_logs is not None and hos_logs.num_rows:
        for v, d, s, e, st in zip(_col(hos_logs, "vehicle_id"), _col(hos_logs, "driver_id"),
                                  _col(hos_logs, "start_ts"), _col(hos_logs, "end_ts"), _col(hos_logs, "status")):
            if st == "driving" and v is not None:
                driving.setdefault(v, []).append((s, month_end_ms if e is None else e, d))
    return {v: _timeline(a, driving.get(v, [])) for v, a in by_vehicle.items()}


def _timeline(logins: list[tuple[int, int, str]], driving: list[tuple[int, int, str]]) -> Timeline:
    cuts = sorted({t for s, e, _ in logins for t in (s, e)} | {t for s, e, _ in driving for t in (s, e)})
    drivers: list[str | None] = []
    for a, b in zip(cuts, cuts[1:]):
        on = [(s, d) for s, e, d in logins if s <= a and e >= b]
        if not on:
            drivers.append(None)
            continue
        if len(on) > 1:
            at_wheel = sorted({d for s, e, d in driving if s <= a and e >= b} & {d for _, d in on})
            if at_wheel:
                drivers.append(at_wheel[0])
                continue
        drivers.append(sorted(on, key=lambda x: (-x[0], x[1]))[0][1])
    # merge neighbours with the same driver: fewer bounds, the same answers
    bounds: list[int] = [cuts[0]] if cuts else []
    merged: list[str | None] = []
    for i, d in enumerate(drivers):
        if merged and merged[-1] == d:
            bounds[-1] = cuts[i + 1]
        else:
            merged.append(d)
            bounds.append(cuts[i + 1])
    return Timeline(np.asarray(bounds, np.int64), tuple(merged))
