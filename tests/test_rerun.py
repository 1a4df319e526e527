"""A re-run on request, and the book's readiness, on a lake landed through the real writer and
computed by the real planner and executor.

A window whose inputs and code are unchanged has nothing to plan; a re-run sets its succeeded run
aside in the manifest (when, and who asked), so the planner plans it again, once. The book's
readiness (one set-based query for every fleet) must count the same months ready as a fleet's own
readiness (which plans that fleet), whatever state the fleet is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.months import month_bounds_ms
from common.states import FleetStatus, RunStatus
from ingest.engine.planner import plan
from ingest.engine.runs import run_features
from ingest.flows.registry import active_flows
from ingest.runtime.app import App, build_app
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.simulator import FleetSimulator, FleetSpec
from tests.support.pings import sim_table
from tests.test_writer import write

MONTHS = ["2025-01", "2025-02", "2025-03"]
OPEN = "2025-04"
NOW_MS = month_bounds_ms(OPEN)[0] + 10 * 86_400_000  # ten days into the open month


@dataclass(frozen=True)
class Fixed:
    ms: int

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, Path]]:
    tmp = tmp_path_factory.mktemp("rerun")
    sim = FleetSimulator(FleetSpec("fleet-a", 3, 2, datetime(2025, 1, 1, tzinfo=timezone.utc), ping_interval_s=60,
                                   parked_interval_s=600))
    store = LocalStore(tmp / "store")
    settings = load_settings(data_dir=tmp, token_key=SecretStr(Fernet.generate_key().decode()),
                             readiness_months=[1, 3])
    with Manifest(tmp / "m.duckdb") as m:
        m.upsert_fleet("fleet-a", "samsara", FleetStatus.ACTIVE, history_start=datetime(2025, 1, 1, tzinfo=timezone.utc))
        for month in [*MONTHS, OPEN]:
            write(store, m, [sim_table(sim, [month])], tmp)
        yield build_app(settings, m, store, {}, active_flows(), clock=Fixed(NOW_MS)), tmp


def _run(app: App, tmp: Path):  # type: ignore[no-untyped-def]
    return run_features(app.manifest, app.flows, app.store.url, None, tmp / "cache", NOW_MS, workers=2)


def _book(app: App) -> tuple[int, int, int | None]:
    line = next(b for b in app.reads.book() if b.landing.fleet_id == "fleet-a")
    return line.readiness.months_ready, line.readiness.span, line.readiness.ready_for


def _own(app: App) -> tuple[int, int, int | None]:
    r = app.reads.readiness("fleet-a")
    span = 0 if r.span is None else MONTHS.index(r.span[1]) - MONTHS.index(r.span[0]) + 1
    reached = [t.months for t in r.thresholds if t.reached and t.fired_at is None]
    return len(r.months_ready), span, max(reached) if reached else None


def test_the_books_readiness_counts_what_the_fleets_own_readiness_counts(lake: tuple[App, Path]) -> None:
    app, tmp = lake
    m = app.manifest
    assert _book(app) == _own(app) == (0, 0, None)  # landed, not pulled in full, nothing computed
    for month in MONTHS:
        m.record_month_pulled("fleet-a", month)
    assert _book(app) == _own(app) == (0, 0, None)  # pulled, not computed
    report = _run(app, tmp)
    assert not report.failed, [r.error for r in report.failed]
    assert _book(app) == _own(app) == (3, 3, 3)  # the open month never counts
    # The newest complete month set aside for a re-run: it waits for its run, and the span with it.
    assert m.supersede_runs("fleet-a", [("distance", 2)], MONTHS[-1], "test") == 1
    assert _book(app) == _own(app) == (2, 0, None)
    _run(app, tmp)
    assert _book(app) == _own(app) == (3, 3, 3)
    # A month in the middle set aside: ready months drop by one, the span stops at the gap.
    m.supersede_runs("fleet-a", [(f.name, f.version) for f in app.flows], MONTHS[1], "test")
    assert _book(app) == _own(app) == (2, 1, 1)
    _run(app, tmp)


def test_a_rerun_of_an_unchanged_window_runs_it_once_more_and_records_why(lake: tuple[App, Path]) -> None:
    app, tmp = lake
    m = app.manifest
    _run(app, tmp)
    assert plan(m, app.flows) == []  # inputs and code unchanged: nothing to run
    before = m.window_runs("fleet-a", "distance", 2, MONTHS[0])
    assert before and before[-1].run.status is RunStatus.SUCCEEDED and before[-1].superseded_at is None

    assert m.supersede_runs("fleet-a", [("distance", 2)], MONTHS[0], "console (ops@example.com)") == len(
        [a for a in before if a.run.status is RunStatus.SUCCEEDED])
    assert [(t.flow, t.version, t.month) for t in plan(m, app.flows)] == [("distance", 2, MONTHS[0])]
    rerun = _run(app, tmp)
    assert [(r.flow, r.month, r.status) for r in rerun.results] == [("distance", MONTHS[0], RunStatus.SUCCEEDED)]
    # Same inputs, same code, same content: nothing new committed, and the run says so.
    assert rerun.results[0].outputs == before[-1].run.outputs
    assert (rerun.results[0].stats or {}).get("same_content") is True
    assert plan(m, app.flows) == []  # once: the new run is current

    after = m.window_runs("fleet-a", "distance", 2, MONTHS[0])
    assert [a.attempt for a in after] == list(range(1, len(before) + 2))
    assert after[-2].run.run_id == before[-1].run.run_id and after[-2].superseded_by == "console (ops@example.com)"
    assert after[-2].superseded_at is not None and after[-1].superseded_at is None
    # Asked again: only the new run is set aside (the old one is already), and no other window.
    assert m.supersede_runs("fleet-a", [("distance", 2)], MONTHS[0], "test") == 1
    assert [(t.flow, t.month) for t in plan(m, app.flows)] == [("distance", MONTHS[0])]
    _run(app, tmp)
