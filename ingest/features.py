"""One feature pass: plan every window that changed, run them, and summarise what ran."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ingest.backend import open_backend
from ingest.executor import RunResult, execute
from ingest.flows.base import Flow
from ingest.planner import WindowTask, plan
from partitions.manifest import Manifest
from partitions.store import S3Options


@dataclass(frozen=True)
class FeatureReport:
    results: tuple[RunResult, ...]

    @property
    def failed(self) -> tuple[RunResult, ...]:
        return tuple(r for r in self.results if r.status != "succeeded")

    def windows(self, fleet_id: str | None = None) -> Counter[tuple[str, int]]:
        """Succeeded windows per (flow, version), for one fleet or all."""
        return Counter((r.task.flow, r.task.version) for r in self.results
                       if r.status == "succeeded" and (fleet_id is None or r.task.fleet_id == fleet_id))

    def months(self, fleet_id: str) -> list[str]:
        return sorted({r.task.month for r in self.results if r.task.fleet_id == fleet_id})


def run_features(manifest: Manifest, flows: list[Flow], store_url: str, s3: S3Options | None, cache_dir: Path,
                 now_ms: int, workers: int = 2, *, where: Callable[[WindowTask], bool] | None = None,
                 skip_fleets: frozenset[str] = frozenset(), executor: str = "local",
                 ray_address: str | None = None) -> FeatureReport:
    """Plan, then run the windows on the named executor (FLEETLAKE_EXECUTOR): `workers` local processes or Ray.

    `where` keeps only some planned windows (e.g. one fleet-month as its backfill completes it).
    Fleets in `skip_fleets` (being pulled) are left for the pass their pull queues when it ends:
    their months may still change, and computing them now would compute them twice.
    """
    tasks = [t for t in plan(manifest, flows) if t.fleet_id not in skip_fleets and (where is None or where(t))]
    if not tasks:
        return FeatureReport(())
    backend = open_backend(executor, workers, ["ingest.executor", *sorted({f.module for f in flows})], ray_address)
    try:
        return FeatureReport(tuple(execute(manifest, tasks, flows, store_url, s3, cache_dir, now_ms, workers,
                                           backend)))
    finally:
        backend.close()
