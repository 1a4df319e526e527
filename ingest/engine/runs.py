"""Feature runs: plan the windows that changed, run them, summarise what ran.

`FeatureRuns.run` is called with the fleet-months a feature work item names (or none: every
pending window) and runs only their windows; the planner reads the manifest alone, so a pass
where nothing changed opens no Parquet. Runs are recorded by the executor as they commit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.disk import free_bytes
from common.errors import DiskFull
from common.states import RunStatus
from ingest.engine.backend import TaskBackend, open_backend
from ingest.engine.derived import plan_derived
from ingest.engine.executor import DEADLINE_S, execute
from ingest.engine.planner import WindowTask, plan
from ingest.engine.windows import BOOK
from ingest.flows.base import Flow

QUOTE_MONTHS = 12  # the quote window's months when no settings say (FLEETLAKE_QUOTE_MONTHS)
from ingest.wiring.clock import Clock
from ingest.wiring.disk import DiskHealth
from ingest.wiring.metrics import Metrics
from ingest.wiring.settings import Settings
from partitions.manifest import FlowRun, Manifest
from partitions.store import ObjectStore, S3Options


@dataclass(frozen=True)
class FeatureReport:
    results: tuple[FlowRun, ...]

    @property
    def failed(self) -> tuple[FlowRun, ...]:
        return tuple(r for r in self.results if r.status is not RunStatus.SUCCEEDED)

    def windows(self, fleet_id: str | None = None) -> Counter[tuple[str, int]]:
        """Succeeded windows per (flow, version), for one fleet or all."""
        return Counter((r.flow, r.version) for r in self.results
                       if r.status is RunStatus.SUCCEEDED and (fleet_id is None or r.fleet_id == fleet_id))

    def months(self, fleet_id: str) -> list[str]:
        return sorted({r.month for r in self.results if r.fleet_id == fleet_id})

    def fleets(self) -> list[str]:
        """The fleets whose windows ran (not the book's pseudo-fleet: it is every fleet's window)."""
        return sorted({r.fleet_id for r in self.results if r.fleet_id != BOOK})

    def __add__(self, other: FeatureReport) -> FeatureReport:
        return FeatureReport((*self.results, *other.results))


def run_features(manifest: Manifest, flows: list[Flow], store_url: str, s3: S3Options | None, cache_dir: Path,
                 now_ms: int, workers: int = 2, *, tasks: list[WindowTask] | None = None, executor: str = "local",
                 ray_address: str | None = None, quote_months: int = QUOTE_MONTHS,
                 fleets: Iterable[str] | None = None, backend: TaskBackend | None = None,
                 deadline_s: float = DEADLINE_S) -> FeatureReport:
    """Run `tasks` (default: every pending window) on the named executor: `workers` local processes or Ray;
    then the flows on flows, level by level, whose inputs those runs made current (of `fleets` only
    when given, and the book's)."""
    tasks = plan(manifest, flows, now_ms=now_ms) if tasks is None else tasks
    derived = [f for f in flows if f.upstream]
    scope = sorted(set(fleets)) if fleets is not None else None
    if not tasks and not derived:
        return FeatureReport(())
    own = backend is None
    if backend is None:
        backend = open_backend(executor, workers, ["ingest.engine.executor", *sorted({f.module for f in flows})],
                               ray_address)
    results: list[FlowRun] = []
    try:
        if tasks:
            results += execute(manifest, tasks, flows, store_url, s3, cache_dir, now_ms, workers, backend, deadline_s)
        # Each level's windows wait for the level they read; a level is planned once the one before
        # it is recorded, so the graph's depth bounds the passes.
        for _level in range(len(derived)):
            waiting = plan(manifest, flows, check=False, now_ms=now_ms)  # raw windows not current yet
            more = _derived(manifest, flows, now_ms, quote_months, waiting, scope)
            if not more:
                break
            results += execute(manifest, more, flows, store_url, s3, cache_dir, now_ms, workers, backend, deadline_s)
        return FeatureReport(tuple(results))
    finally:
        if own:
            backend.close()


def _derived(manifest: Manifest, flows: list[Flow], now_ms: int, quote_months: int, waiting: list[WindowTask],
             fleets: list[str] | None) -> list[WindowTask]:
    if fleets is None:
        return plan_derived(manifest, flows, now_ms, quote_months, waiting)
    tasks: dict[tuple[str, int, str, str], WindowTask] = {}
    for fleet_id in fleets:  # one fleet's windows each, and the book's (planned with every fleet's)
        for t in plan_derived(manifest, flows, now_ms, quote_months, waiting, fleet_id):
            tasks[(t.flow, t.version, t.fleet_id, t.window_key)] = t
    return list(tasks.values())


# A fleet-month whose windows a feature work item runs; month None: every pending window of the fleet.
Target = tuple[str, str | None]


class FeatureRuns:
    def __init__(self, settings: Settings, manifest: Manifest, store: ObjectStore, flows: list[Flow],
                 metrics: Metrics, clock: Clock, disk: DiskHealth) -> None:
        self.settings = settings
        self.disk = disk
        self.manifest = manifest
        self.store = store
        self.flows = flows
        self.metrics = metrics
        self.clock = clock
        self._checked = False  # the flows' schemas are checked (and recorded) once, before the first plan

    def pending(self, fleet_id: str | None = None) -> list[WindowTask]:
        """Windows that need a run (one fleet's, or the book's): one set-based query, no Parquet."""
        if not self.flows:
            return []
        tasks = plan(self.manifest, self.flows, fleet_id, check=not self._checked,
                     now_ms=self.clock.now_ms())
        self._checked = True
        return tasks

    def run(self, targets: Iterable[Target] | None = None) -> FeatureReport:
        """Run the pending windows of `targets` (every pending window when None) on the settings' executor."""
        if not self.flows:
            return FeatureReport(())  # nothing to plan: not even the clock is asked
        t0 = time.monotonic()
        tasks = self._tasks(targets)
        if not tasks and not any(f.upstream for f in self.flows):
            return FeatureReport(())
        s = self.settings
        fleets = None if targets is None else {fleet_id for fleet_id, _ in targets}
        report = run_features(self.manifest, self.flows, self.store.url, s.s3_options(), s.work_dir / "cache",
                              self.clock.now_ms(), s.flow_workers, tasks=tasks, executor=s.executor,
                              ray_address=s.ray_address, quote_months=s.quote_months, fleets=fleets,
                              deadline_s=s.window_deadline_s)
        self.metrics.seconds.labels("features").observe(time.monotonic() - t0)
        if any((r.error or "").startswith(DiskFull.__name__) for r in report.failed):
            self.disk.full(DiskFull("FLEETLAKE_DATA_DIR", "work/cache", free_bytes(s.work_dir)))
        elif report.results and not report.failed:
            self.disk.wrote()
        for r in report.results:
            self.metrics.windows.labels(r.flow, r.status.value).inc()
        return report

    def _tasks(self, targets: Iterable[Target] | None) -> list[WindowTask]:
        if targets is None:
            return self.pending()
        by_fleet: dict[str, set[str | None]] = {}
        for fleet_id, month in targets:
            by_fleet.setdefault(fleet_id, set()).add(month)
        tasks: list[WindowTask] = []
        for fleet_id, months in sorted(by_fleet.items()):  # one fleet's plan each: it does not scale with the book
            tasks += [t for t in self.pending(fleet_id) if None in months or t.month in months]
        return tasks
