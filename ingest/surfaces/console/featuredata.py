"""What the features page plots, read from one fleet's feature tables.

The manifest names the newest succeeded run of each (flow, month) for the fleet; only those
runs' output files are read (the one place the console opens Parquet, and only one fleet's).
Each plot is a set of monthly series; a value that could not be measured is None with the
reason the flow gave, never 0, so the page can mark it instead of drawing a false zero.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.flows.fatigue import rules as fatigue_flow
from ingest.runtime.app import App
from partitions.reader import local_files

HARSH_KINDS = (("harsh_brake", "braking"), ("harsh_accel", "acceleration"), ("sharp_turn", "sharp turns"))
TOP_STATES = 6  # states drawn one by one in the stacked plot; the rest are summed as "other (N states)"
OUTSIDE = "--"  # the distance flow's state code for miles outside every US state
OUTSIDE_NAME = "outside US states"


@dataclass(frozen=True)
class Point:
    month: str
    value: float | None
    note: str | None = None  # why the value is missing, or a label (the radius class)


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    unit: str                    # after a value in a tooltip and in the CSV
    series: tuple[Series, ...]
    stacked: bool = False
    axis: str = ""               # the y axis title (the unit when empty)


@dataclass(frozen=True)
class FeaturePage:
    fleet_id: str
    vehicle: str | None  # None: the fleet roll-up
    vehicles: tuple[str, ...]
    months: tuple[str, ...]
    open_months: frozenset[str]  # months not complete when computed
    plots: tuple[Plot, ...]
    # The newest month's drivers@1 rows (whole-fleet view only), a driver's display name joined from
    # the drivers snapshot; the unassigned row (driver_id None) among them.
    drivers_month: str | None = None
    drivers: tuple[dict[str, Any], ...] = ()

    def csv(self) -> str:
        """Exactly what is plotted, long form: one line per (plot, series, month)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["fleet_id", "vehicle_id", "plot", "series", "month", "value", "unit", "note", "complete_month"])
        for p in self.plots:
            for s in p.series:
                for pt in s.points:
                    w.writerow([self.fleet_id, self.vehicle or "", p.key, s.name, pt.month,
                                "" if pt.value is None else repr(pt.value), p.unit, pt.note or "",
                                str(pt.month not in self.open_months).lower()])
        return out.getvalue()


Rows = dict[str, dict[str, list[dict[str, Any]]]]  # flow -> month -> rows of the chosen vehicle (or fleet)


def read_rows(app: App, fleet_id: str, vehicle: str | None) -> tuple[Rows, tuple[str, ...]]:
    """The chosen vehicle's (or fleet's) rows of each active flow's newest version, and all vehicle ids."""
    newest: dict[str, int] = {}
    for f in (f for f in app.flows if not f.upstream):  # month flows (the quote has a page of its own)
        newest[f.name] = max(newest.get(f.name, 0), f.version)
    rows: Rows = {}
    vehicles: set[str] = set()
    cache = app.settings.work_dir / "cache"
    with app.manifest.reading() as m:
        runs = m.latest_runs(fleet_id, succeeded_only=True)
    for run in runs:
        if newest.get(run.flow) != run.version:
            continue
        for path in local_files(app.store, list(run.outputs), cache):
            t = pq.read_table(path)
            if "vehicle_id" not in t.column_names:  # per-driver tables (drivers@1): whole, for the drivers table
                if vehicle is None:
                    rows.setdefault(run.flow, {}).setdefault(run.month, []).extend(t.to_pylist())
                continue
            ids = t["vehicle_id"]
            vehicles.update(v for v in pc.unique(ids).to_pylist() if v is not None)
            # Only the chosen rows become Python values: a month holds every vehicle's rows.
            mine = t.filter(pc.is_null(ids) if vehicle is None else pc.equal(ids, vehicle))
            if mine.num_rows:
                rows.setdefault(run.flow, {}).setdefault(run.month, []).extend(mine.to_pylist())
    return rows, tuple(sorted(vehicles))


def _series(name: str, months: tuple[str, ...], by_month: dict[str, list[dict[str, Any]]],
            value: Callable[[list[dict[str, Any]]], tuple[float | None, str | None]]) -> Series:
    pts = []
    for m in months:
        got = by_month.get(m)
        pts.append(Point(m, None, "not computed yet") if not got else Point(m, *value(got)))
    return Series(name, tuple(pts))


def _col(col: str, scale: float = 1.0, missing: str = "not measurable") -> Callable[
        [list[dict[str, Any]]], tuple[float | None, str | None]]:
    def get(rows: list[dict[str, Any]]) -> tuple[float | None, str | None]:
        v = rows[0].get(col)
        return (None, missing) if v is None else (float(v) * scale, None)
    return get


def other_name(states: set[str]) -> str:
    """The stacked plot's remainder, saying what it holds: "other (12 states)", "other (NM)"."""
    return f"other ({next(iter(states))})" if len(states) == 1 else f"other ({len(states)} states)"


def build(app: App, fleet_id: str, vehicle: str | None) -> FeaturePage:
    rows, vehicles = read_rows(app, fleet_id, vehicle)
    months = tuple(sorted({m for f, by_month in rows.items() if f != "drivers" for m in by_month}))
    open_months = frozenset(m for by_month in rows.values() for m, rs in by_month.items()
                            if any(r.get("complete_month") is False for r in rs))
    dist, radius = rows.get("distance", {}), rows.get("radius", {})
    speed, fatigue, harsh = rows.get("speed", {}), rows.get("fatigue", {}), rows.get("harsh", {})

    def total_miles(rs: list[dict[str, Any]]) -> tuple[float | None, str | None]:
        return float(sum(r["miles"] or 0.0 for r in rs)), None

    state_total: dict[str, float] = {}
    for rs in dist.values():
        for r in rs:
            state_total[r["state"]] = state_total.get(r["state"], 0.0) + (r["miles"] or 0.0)
    top = [s for s, _ in sorted(state_total.items(), key=lambda kv: (-kv[1], kv[0])) if s != OUTSIDE][:TOP_STATES]
    rest = set(state_total) - set(top) - {OUTSIDE}

    def state_miles(states: set[str]) -> Callable[[list[dict[str, Any]]], tuple[float | None, str | None]]:
        return lambda rs: (float(sum(r["miles"] or 0.0 for r in rs if r["state"] in states)), None)

    # The top states by name, then the rest as one segment that says how many states it holds, then
    # the miles outside every state (Canada, Mexico, at sea): named, never an unexplained "--".
    by_state = [_series(s, months, dist, state_miles({s})) for s in top]
    if rest:
        by_state.append(_series(other_name(rest), months, dist, state_miles(rest)))
    if state_total.get(OUTSIDE):
        by_state.append(_series(OUTSIDE_NAME, months, dist, state_miles({OUTSIDE})))

    def p90(rs: list[dict[str, Any]]) -> tuple[float | None, str | None]:
        r = rs[0]
        if r.get("p90_daily_radius_mi") is None:
            return None, "garaging unknown (too few nights observed)"
        return float(r["p90_daily_radius_mi"]), r.get("radius_class")

    def harsh_rate(kind: str) -> Callable[[list[dict[str, Any]]], tuple[float | None, str | None]]:
        def get(rs: list[dict[str, Any]]) -> tuple[float | None, str | None]:
            r = rs[0]
            if not r.get(f"{kind}_measurable") or r.get(f"{kind}s_per_1000_mi") is None:
                return None, r.get(f"{kind}_reason") or "not measurable"
            return float(r[f"{kind}s_per_1000_mi"]), r.get(f"{kind}_source")
        return get

    plots = (
        Plot("miles", "Miles", "mi", (_series("miles", months, dist, total_miles),), axis="miles"),
        Plot("miles_by_state", "Miles by state", "mi", tuple(by_state), stacked=True, axis="miles"),
        Plot("radius", "p90 daily radius (label: radius class)", "mi", (_series("p90 radius", months, radius, p90),),
             axis="miles from garaging"),
        Plot("speeding", "Speeding hours", "h", (_series("speeding", months, speed,
                                                         _col("speeding_minutes", 1 / 60)),),
             axis="hours over the limit"),
        Plot("harsh", "Harsh events per 1,000 mi", "per 1,000 mi",
             tuple(_series(label, months, harsh, harsh_rate(k)) for k, label in HARSH_KINDS),
             axis="events per 1,000 mi"),
        Plot("night_share", f"Night share of driving ({fatigue_flow.NIGHT_START_H:02.0f}:00-"
             f"{fatigue_flow.NIGHT_END_H:02.0f}:00 local)", "%",
             (_series("night share", months, fatigue, _col("night_share", 100.0)),), axis="% of driving hours"),
        Plot("driving_hours", "Driving hours", "h", (_series("driving", months, fatigue, _col("driving_hours")),),
             axis="hours"),
    )
    by_driver = rows.get("drivers", {})
    newest = max(by_driver) if by_driver else None
    return FeaturePage(fleet_id, vehicle, vehicles, months, open_months, plots, newest,
                       _named(app, fleet_id, by_driver.get(newest, []) if newest else []))


def _named(app: App, fleet_id: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Driver rows with the name the fleet's drivers snapshot gives each id (None when it has none)."""
    from partitions import read_snapshot

    t = read_snapshot(app.store, app.manifest, fleet_id, app.settings.work_dir / "cache", "drivers")
    names: dict[str, str | None] = dict(zip(t["driver_id"].to_pylist(), t["name"].to_pylist()))
    return tuple({**r, "name": names.get(r["driver_id"]) if r["driver_id"] else None} for r in rows)
