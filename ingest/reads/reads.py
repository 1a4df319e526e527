"""What fleetlake reports, read from the manifest's read view (and one fleet's feature files).

Every read takes `Manifest.reading()`: a connection of its own, so the API answers while pull
workers hold the writer's lock for a commit. What only the running process knows (the progress
of a pull, stuck work) comes from the `LiveWork` it is handed: the work queue, in a daemon.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import pyarrow.parquet as pq

from common import names
from common.errors import UnknownFleet
from common.months import month_of_ms
from common.states import RunStatus, WindowState
from ingest.engine.planner import active_inputs, plan
from ingest.flows.base import Flow
from ingest.pull.backfill import PullProgress
from ingest.reads.quote import Quote, quote_of
from ingest.reads.readiness import Readiness, book_readiness, readiness
from ingest.reads.views import BookLine, FleetFeatures, FleetGrid, FleetView, MonthRow
from ingest.wiring.clock import Clock
from ingest.wiring.settings import Settings
from partitions.manifest import Manifest, ManifestReader, RunAttempt, RunLine
from partitions.reader import local_files
from partitions.store import ObjectStore


class LiveWork(Protocol):
    """What the process running the work knows and the manifest does not."""

    def pull_progress(self, fleet_id: str) -> PullProgress | None:
        """Where the fleet's running pull stands, or None when none runs here."""

    def stuck(self, fleet_id: str) -> str | None:
        """Why the fleet's running pull is stuck, or None."""


class NoLiveWork:
    """A process that runs no work of its own (the CLI reading a manifest)."""

    def pull_progress(self, fleet_id: str) -> PullProgress | None:
        return None

    def stuck(self, fleet_id: str) -> str | None:
        return None


class Reads:
    def __init__(self, settings: Settings, manifest: Manifest, store: ObjectStore, flows: list[Flow], clock: Clock,
                 live: LiveWork | None = None) -> None:
        self.settings = settings
        self.manifest = manifest
        self.store = store
        self.flows = flows
        self.clock = clock
        self.live: LiveWork = live or NoLiveWork()

    def fleets(self) -> list[FleetView]:
        with self.manifest.reading() as m:
            return [FleetView.of(f, self.live.stuck(f.fleet_id)) for f in m.fleets()]

    def fleet(self, fleet_id: str) -> FleetView:
        """One fleet, or UnknownFleet (a KeyError)."""
        with self.manifest.reading() as m:
            return self._fleet(m, fleet_id)

    def _fleet(self, m: ManifestReader, fleet_id: str) -> FleetView:
        fleet = m.fleet(names.fleet_id(fleet_id))
        if fleet is None:
            raise UnknownFleet(fleet_id)
        return FleetView.of(fleet, self.live.stuck(fleet.fleet_id))

    def book(self) -> list[BookLine]:
        """Every fleet, what of it has landed and how close it is to a quote: two set-based queries for
        the whole book on one read view (no plan per fleet: a book of 1,000 fleets is one page view)."""
        now_ms = self.clock.now_ms()
        active = active_inputs(self.flows)
        with self.manifest.reading() as m:
            landings = m.fleet_landings()
            ready = m.ready_months(active, month_of_ms(now_ms))
        marks = book_readiness(landings, ready, now_ms, self.settings.readiness_months)
        return [BookLine(f, marks[f.fleet_id]) for f in landings]

    def window_runs(self, fleet_id: str, flow: str, version: int, month: str) -> list[RunAttempt]:
        """Every run of one of a fleet's feature windows, first attempt first (UnknownFleet likewise)."""
        names.month(month)
        with self.manifest.reading() as m:
            self._fleet(m, fleet_id)
            return m.window_runs(fleet_id, flow, version, month)

    def work_log(self, fleet_id: str) -> tuple[set[tuple[str, int, str]], list[RunLine]]:
        """A fleet's windows recomputed on new inputs, and its newest runs."""
        with self.manifest.reading() as m:
            self._fleet(m, fleet_id)
            return m.recomputed_windows(fleet_id), m.recent_runs(fleet_id)

    def status(self, fleet_id: str) -> FleetGrid:
        """One fleet's grid: per month, raw rows per dataset and the state of each active flow version.

        Plans this fleet only, on a read view: it neither waits for the writer nor scales with the book.
        """
        with self.manifest.reading() as m:
            fleet = self._fleet(m, fleet_id)
            raw: dict[str, dict[str, int]] = {}
            for p in m.raw_partitions(fleet_id):
                raw.setdefault(p.month, {})[p.dataset] = p.rows
            failed = {r.window for r in m.latest_runs(fleet_id) if r.status is RunStatus.FAILED}
            pending = {(t.flow, t.version, t.month) for t in plan(m, self.flows, fleet_id, check=False)}
        months = {}
        for month, datasets in raw.items():
            states = {}
            for f in self.flows:
                window = (f.name, f.version, month)
                states[f"{f.name}@{f.version}"] = (WindowState.DONE if window not in pending else
                                                   WindowState.FAILED if window in failed else WindowState.PENDING)
            months[month] = MonthRow(datasets, states)
        return FleetGrid(fleet, dict(sorted(months.items())))

    def features(self, fleet_id: str, month: str | None = None) -> FleetFeatures:
        """The fleet roll-up row of each active flow's newest succeeded run (per month)."""
        if month is not None:
            names.month(month)
        with self.manifest.reading() as m:
            self._fleet(m, fleet_id)
            runs = m.latest_runs(fleet_id, succeeded_only=True)
        active = {(f.name, f.version) for f in self.flows}
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for run in runs:
            if (run.flow, run.version) not in active or (month and run.month != month):
                continue
            paths = local_files(self.store, list(run.outputs), self.settings.work_dir / "cache")
            rows = [r for p in paths for r in pq.read_table(p).to_pylist() if r.get("vehicle_id") is None]
            out.setdefault(run.month, {})[f"{run.flow}@{run.version}"] = [_plain(r) for r in rows]
        return FleetFeatures(fleet_id, dict(sorted(out.items())))

    def quote(self, fleet_id: str) -> Quote | None:
        """The fleet's newest quote summary and its percentiles in the book (None before the first);
        UnknownFleet likewise."""
        with self.manifest.reading() as m:
            self._fleet(m, fleet_id)
            return quote_of(m, self.store, fleet_id, self.settings.work_dir / "cache")

    def readiness(self, fleet_id: str) -> Readiness:
        """How close a fleet is to a preliminary quote (ingest.reads.readiness); UnknownFleet likewise.

        Plans this fleet only, on a read view.
        """
        with self.manifest.reading() as m:
            if m.fleet(names.fleet_id(fleet_id)) is None:
                raise UnknownFleet(fleet_id)  # before planning: an unknown fleet answers at once
            pending = plan(m, self.flows, fleet_id, check=False)
            return readiness(m, self.flows, pending, fleet_id, self.clock.now_ms(), self.settings.readiness_months,
                             self.live.pull_progress(fleet_id))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
