"""A fleet's quote: its current quote_summary row and where it stands in the book (quote_book).

Read from the manifest (the newest succeeded run of each) and the runs' own files: what the API
(`GET /fleets/<id>/quote`), `fleetlake status --fleet` and the console's printable page show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from partitions.manifest import FlowRun, ManifestReader
from partitions.reader import local_files
from partitions.store import ObjectStore

SUMMARY, BOOK = ("quote_summary", 1), ("quote_book", 1)
# (figure, label, unit) in the order an underwriter reads them
FIGURES = (("miles", "Miles", "mi"), ("radius_class", "Radius class", ""), ("harsh_per_1000_mi", "Harsh events", "per 1,000 mi"),
           ("speeding_per_1000_mi", "Speeding episodes", "per 1,000 mi"), ("night_share", "Night driving", "share"),
           ("active_vehicles", "Active vehicles", ""))


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    unit: str
    value: float | str | None
    months: int  # months of the window the figure covers
    reason: str | None  # why the value is null
    percentile: float | None  # among the book's fleets with a complete window
    percentile_reason: str | None
    fleets_compared: int | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Quote:
    fleet_id: str
    window: str  # e.g. q12:2025-11
    first_month: str
    last_month: str
    window_months: int
    complete_window: bool
    state_shares: list[dict[str, Any]]
    figures: tuple[Figure, ...]
    computed_at: str

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "window": self.window, "first_month": self.first_month,
                "last_month": self.last_month, "window_months": self.window_months,
                "complete_window": self.complete_window, "state_shares": self.state_shares,
                "figures": [f.to_json() for f in self.figures], "computed_at": self.computed_at}


def _newest(m: ManifestReader, fleet_id: str, flow: tuple[str, int]) -> FlowRun | None:
    runs = [r for r in m.latest_runs(fleet_id, succeeded_only=True) if (r.flow, r.version) == flow]
    return max(runs, key=lambda r: (r.window_key, r.started_at), default=None)


def _rows(store: ObjectStore, run: FlowRun, cache: Path) -> list[dict[str, Any]]:
    return [r for p in local_files(store, list(run.outputs), cache) for r in pq.read_table(p).to_pylist()]


def quote_of(m: ManifestReader, store: ObjectStore, fleet_id: str, cache: Path) -> Quote | None:
    """The fleet's newest quote, or None while none has been computed."""
    run = _newest(m, fleet_id, SUMMARY)
    if run is None:
        return None
    [row] = _rows(store, run, cache)[:1]
    book_run = _newest(m, "book", BOOK)
    ranks: dict[str, dict[str, Any]] = {}
    if book_run is not None and book_run.window_key == f"book:{run.window_key}":
        ranks = {r["figure"]: r for r in _rows(store, book_run, cache) if r["fleet_id"] == fleet_id}
    months_of = {"miles": "miles_months", "radius_class": "radius_months", "harsh_per_1000_mi": "harsh_months",
                 "speeding_per_1000_mi": "speeding_months", "night_share": "night_months",
                 "active_vehicles": "active_vehicles_months"}
    reason_of = {"miles": "miles_reason", "radius_class": "radius_reason", "harsh_per_1000_mi": "harsh_reason",
                 "speeding_per_1000_mi": "speeding_reason", "night_share": "night_reason",
                 "active_vehicles": "active_vehicles_reason"}
    figures = []
    for name, label, unit in FIGURES:
        rank = ranks.get(name)
        figures.append(Figure(name, label, unit, row[name], int(row[months_of[name]] or 0), row[reason_of[name]],
                              rank["percentile"] if rank else None,
                              (rank["reason"] if rank else "not ranked (the book has no window for this quote yet)"
                               if name != "radius_class" else "a class, not a number: not ranked"),
                              rank["fleets_compared"] if rank else None))
    return Quote(fleet_id, run.window_key, row["first_month"], row["last_month"], int(row["window_months"]),
                 bool(row["complete_window"]), list(row["state_shares"] or []), tuple(figures),
                 run.started_at.isoformat())
