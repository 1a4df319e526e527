"""Incrementality on a two-year lake, asserted on the manifest (issue 5, "Done when").

24 months of one fleet are landed through the real writer and every active flow runs through
the real planner and executor; then each kind of change must rerun exactly its own windows.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ingest.engine.planner import plan
from ingest.engine.runs import run_features
from ingest.flows.registry import active_flows
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.simulator import FleetSimulator, FleetSpec
from tests.support.pings import sim_table
from tests.test_writer import write

pytestmark = pytest.mark.slow

MONTHS = [f"{2024 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in range(1, 26)]  # 2024-01 .. 2026-01
NOW_MS = 1_900_000_000_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("incremental")
    sim = FleetSimulator(FleetSpec("fleet-a", 5, 2, datetime(2024, 1, 1, tzinfo=timezone.utc), ping_interval_s=60,
                                   parked_interval_s=600))
    store = LocalStore(tmp / "store")
    with Manifest(tmp / "m.duckdb") as m:
        for month in MONTHS[:24]:
            write(store, m, [sim_table(sim, [month])], tmp)
        yield sim, store, m, tmp


def _run(m: Manifest, store: LocalStore, tmp: Path, flows):  # type: ignore[no-untyped-def]
    return run_features(m, flows, store.url, None, tmp / "cache", NOW_MS, workers=2)


def _windows(results) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    return sorted((r.flow, r.version, r.month) for r in results)


def test_each_change_reruns_exactly_its_windows(lake) -> None:
    sim, store, m, tmp = lake
    flows = active_flows()
    assert len(flows) >= 7
    names = sorted((f.name, f.version) for f in flows)

    backfill = _run(m, store, tmp, flows)
    assert not backfill.failed, [r.error for r in backfill.failed]
    assert _windows(backfill.results) == sorted((n, v, mo) for n, v in names for mo in MONTHS[:24])

    # Month 25 arrives: exactly one window per active flow version, all of them month 25.
    write(store, m, [sim_table(sim, [MONTHS[24]])], tmp)
    refresh = _run(m, store, tmp, flows)
    assert _windows(refresh.results) == [(n, v, MONTHS[24]) for n, v in names]

    # Bumping one flow's version reruns that flow's windows only, under its own prefix.
    bump = next(f.version for f in flows if f.name == "speed") + 1
    bumped = [replace(f, version=bump) if f.name == "speed" else f for f in flows]
    rerun = _run(m, store, tmp, bumped)
    assert _windows(rerun.results) == [("speed", bump, mo) for mo in MONTHS]
    assert all(r.outputs[0].startswith(f"features/speed/v{bump}/") for r in rerun.results)

    # Late pings in month 23 rerun month 23 only.
    late = sim_table(FleetSimulator(replace(sim.spec, seed=99)), [MONTHS[22]]).slice(0, 500)
    write(store, m, [late], tmp)
    assert _windows(_run(m, store, tmp, bumped).results) == sorted((n, bump if n == "speed" else v, MONTHS[22])
                                                                    for n, v in names)

    # An identical re-ingest changes no fingerprint: nothing reruns.
    write(store, m, [late], tmp)
    assert _run(m, store, tmp, bumped).results == ()

    # A no-change run reads no Parquet at all: it works with the raw data gone.
    shutil.move(store.root / "raw", tmp / "raw-aside")
    try:
        assert plan(m, bumped) == [] and _run(m, store, tmp, bumped).results == ()
    finally:
        shutil.move(tmp / "raw-aside", store.root / "raw")
    succeeded = [r for r in m.runs() if r.status == "succeeded"]
    n = len(flows)
    assert len(succeeded) == 24 * n + n + 25 + n
