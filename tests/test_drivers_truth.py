"""drivers@1 against the crews' ground truth (sandbox/crew.py), on a realistic fleet.

Twelve trucks on devices that ping every 1 or 5 s through realistic receivers (noise, dropouts,
a quarter without heading, offline gaps), with shifts, mid-day swaps, team driving, days nobody
logs in and late log edits. The month's pings and safety events are committed through the writer,
its assignments, HOS logs and violations pulled from the sandbox over HTTP by the real connector,
and the flow runs on what was committed. Per driver, miles and driving hours must be within 0.5%
of the truth (hours by drivers/driving.py's rule; the fleet flows' 2 mph rule ran up to 1.16% short
here), at least 99% of the assigned driving time must go to the driver who drove it, the unassigned driving must be its own row, and the violation counts must equal the truth's.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet

from common.months import month_bounds_ms
from connectors.oauth import Vault
from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.drivers.schema import VIOLATIONS
from ingest.pull.hos_datasets import HosPull
from partitions import Manifest, read_month
from partitions.store import LocalStore
from partitions.writer import MonthWriter
from sandbox.crew import SETTLED_AFTER_S, driver_truth
from sandbox.groundtruth import month_table
from sandbox.hos_routes import motive_driver_id, samsara_driver_id
from sandbox.server import SandboxServer
from sandbox.simulator import FleetSpec
from sandbox.world import SandboxConfig, SandboxFleet
from tests.support.flows import flow as builtin_flow
from tests.test_pull_sandbox import connect

MONTH = "2025-03"
NOW = datetime(2025, 4, 20, tzinfo=timezone.utc)  # every edit of March is visible by then
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
DATASETS = ("pings", "events", "assignments", "hos_logs", "hos_violations")


def realistic(fleet_id: str, seed: int) -> FleetSpec:
    return FleetSpec(fleet_id, seed, 12, START, ping_interval_s=5, interval_mix=(1, 5), event_rate=3.0,
                     no_heading_share=0.25)


@pytest.fixture(scope="module", params=["samsara", "motive"])
def landed(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    tsp = request.param
    fleet = {"samsara": "acme-freight", "motive": "bluebird-logistics"}[tsp]
    tmp = tmp_path_factory.mktemp(f"drivers-{tsp}")
    cfg = SandboxConfig((SandboxFleet(realistic(fleet, 41), tsp, "Fleet"),), now=NOW,
                        samsara_rate_per_s=1000.0, motive_rate_per_s=1000.0)
    with SandboxServer(cfg) as server, Manifest(tmp / "m.duckdb") as manifest:
        store = LocalStore(tmp / "lake")
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        sim = server.world.sims[fleet]
        lo, hi = month_bounds_ms(MONTH)
        now_ms = server.world.clock.now_ms()
        with MonthWriter(store, manifest, fleet, work_dir=tmp, now_ms=now_ms) as w:
            w.add(month_table(sim, MONTH))
            w.add_events(connector.events_slice(lo, hi))
            HosPull().pull_month(connector, w, MONTH, now_ms)
            w.commit()
        tables = {d: read_month(store, manifest, fleet, MONTH, tmp / "c", d) for d in DATASETS}
        rows = walk.compute(builtin_flow("drivers@1"), FlowInput(fleet, MONTH, tables, True)).to_pylist()
        crew = server.world.crew(fleet)
        ids = samsara_driver_id if tsp == "samsara" else (lambda d: str(motive_driver_id(d)))
        truth = {(ids(d) if d is not None else None): t for d, t in driver_truth(crew, MONTH).items()}
        yield rows, truth, crew


def test_per_driver_miles_and_hours_are_within_half_a_percent(landed) -> None:  # type: ignore[no-untyped-def]
    rows, truth, crew = landed
    got = {r["driver_id"]: r for r in rows}
    kinds = {d.role for d in crew.drivers}
    assert {"own", "relief", "partner"} <= kinds, "the fleet has team and relief drivers"
    for d, t in truth.items():
        if d is None or t["miles"] < 100:
            continue
        assert got[d]["miles"] == pytest.approx(t["miles"], rel=0.005), d
        # The truth counts every moving second, ramps included; the fleet flows' 2 mph rule misses
        # up to 1.16% of a driver's hours on this fleet and fails here (docs/features.md, drivers).
        assert got[d]["driving_hours"] == pytest.approx(t["driving_s"] / 3600, rel=0.005), d


def test_attribution_covers_the_assigned_driving_and_counts_the_unassigned_apart(landed) -> None:  # type: ignore[no-untyped-def]
    rows, truth, _ = landed
    got = {r["driver_id"]: r for r in rows}
    assigned = sum(t["driving_s"] for d, t in truth.items() if d is not None)
    right = sum(min(got.get(d, {}).get("driving_hours", 0.0) * 3600, t["driving_s"])
                for d, t in truth.items() if d is not None)
    assert right / assigned >= 0.99
    assert truth[None]["driving_s"] > 0, "some driving had nobody logged in"
    assert got[None]["driving_hours"] == pytest.approx(truth[None]["driving_s"] / 3600, rel=0.02)
    assert got[None]["share_of_fleet_driving"] == pytest.approx(
        truth[None]["driving_s"] / sum(t["driving_s"] for t in truth.values()), rel=0.02)
    assert all(got[None][f"violations_{k}"] is None for k in VIOLATIONS), "nobody's violations are not 0"


def test_hos_violation_counts_equal_the_truth(landed) -> None:  # type: ignore[no-untyped-def]
    rows, truth, _ = landed
    got = {r["driver_id"]: r for r in rows}
    found = {(d, k): r[f"violations_{k}"] for d, r in got.items() if d is not None for k in VIOLATIONS
             if r[f"violations_{k}"]}
    want = {(d, k): int(n) for d, t in truth.items() if d is not None for k, n in t.items()
            if k not in ("miles", "driving_s")}
    assert want, "the simulated driving broke some rules"
    assert found == want


def test_a_month_is_settled_only_once_every_edit_of_it_is_visible(landed) -> None:  # type: ignore[no-untyped-def]
    # The sandbox serves a settled month's violations from the final ones, computed once; that
    # holds only if, one second before it counts as settled, what is known already is final.
    _, _, crew = landed
    lo, hi = (x // 1000 for x in month_bounds_ms(MONTH))
    just_before = hi + SETTLED_AFTER_S - 1
    edits = [cd.edit.visible_s for v in crew.sim.vehicles for day in crew.days_of(v, lo - 10 * 86_400, hi)
             if (cd := crew.day(v, day)).edit is not None]
    assert edits and max(edits) > hi, "some of the month's days are edited after it ends"
    assert max(edits) <= just_before
    for d in crew.drivers:
        assert crew.violations(d.index, MONTH, just_before) == crew.violations(d.index, MONTH, None), d
