"""One feature pass: plan every window that changed, run them, and summarise what ran."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ingest.executor import RunResult, execute
from ingest.flows.base import Flow
from ingest.planner import plan
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
                 now_ms: int, workers: int = 2, skip_fleets: frozenset[str] = frozenset()) -> FeatureReport:
    # Fleets being pulled are left for the pass their pull queues when it ends: their months may
    # still change, and computing them now would compute them twice.
    tasks = [t for t in plan(manifest, flows) if t.fleet_id not in skip_fleets]
    return FeatureReport(tuple(execute(manifest, tasks, flows, store_url, s3, cache_dir, now_ms, workers)))
