"""Features against the simulator's ground truth, on signals as messy as real ones (issue 12).

The simulator's devices report what real receivers do (sandbox/gnss.py: speed noise, position
error, heading noise, a quarter of the devices without heading, idle drift, dropouts, bursts,
jitter); the truth is the noise-free 1 s track. Two cases land one month through the real
writer, planner and executor and compare what the active flows committed with that truth;
the other intervals run the flows' own functions on the same kind of month.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet

from common.months import month_bounds_ms
from connectors.oauth import Vault
from ingest.engine.executor import execute
from ingest.engine.planner import plan
from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.harsh import detect as harsh2
from ingest.flows.radius import garaging as radius
from ingest.flows.speed import episodes as speed2
from ingest.flows.track import load
from ingest.pull.backfill import PullOptions, pull_events, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.groundtruth import ground_truth, match, month_table, true_events
from sandbox.server import SandboxServer
from sandbox.simulator import FleetSimulator, FleetSpec
from tests.conftest import sandbox_config
from tests.support.flows import flow as builtin_flow
from tests.test_pull_sandbox import connect
from tests.test_writer import write

MONTH = "2025-03"
FLOWS = [builtin_flow(k) for k in ("distance@2", "trips@3", "speed@3", "radius@2", "fatigue@3", "harsh@3")]
CASES = ["1", "2", "5", "10", "30", "5j"]


@lru_cache(maxsize=1)
def _sim(case: str, vehicles: int = 12, seed: int = 31) -> FleetSimulator:
    iv, jitter = (int(case[:-1]), 1) if case.endswith("j") else (int(case), 0)
    # a cache of every vehicle-day of the month: pings and ground truth then generate each day once
    return FleetSimulator(FleetSpec("fleet-a", seed, vehicles, datetime(2025, 1, 1, tzinfo=timezone.utc),
                                    ping_interval_s=iv, jitter_s=jitter, event_rate=3.0, no_heading_share=0.25),
                          cache_days=vehicles * 33)


@pytest.fixture(scope="module", params=["1", "5"], ids=["1s", "5s"])
def landed(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One month of a 12-truck fleet committed and run through the active flows: (sim, outputs by flow, pings)."""
    tmp = tmp_path_factory.mktemp(f"truth{request.param}")
    sim = _sim(request.param)
    store = LocalStore(tmp / "store")
    with Manifest(tmp / "m.duckdb") as m:
        write(store, m, [_pings(sim)], tmp)
        results = execute(m, plan(m, FLOWS), FLOWS, store.url, None, tmp / "c", 1_900_000_000_000)
        [part] = m.raw_partition("fleet-a", "pings", MONTH).files
    assert all(r.status == "succeeded" for r in results), [r.error for r in results]
    outputs = {r.flow: pq.read_table(store.path(r.outputs[0])).to_pylist() for r in results}
    return sim, outputs, pq.read_table(store.path(part))


def _pings(sim: FleetSimulator) -> pa.Table:
    """The month's pings as a connector lands them: a device without heading sends none (null)."""
    return month_table(sim, MONTH)


def _vehicles(rows: list[dict]) -> dict[str, dict]:
    return {r["vehicle_id"]: r for r in rows if r["vehicle_id"] is not None}


@dataclass(frozen=True)
class Month:
    """One simulated month at one interval, loaded once for every test of that interval."""

    case: str
    sim: FleetSimulator
    table: pa.Table
    truth: pa.Table
    states: pa.Table

    @property
    def interval_s(self) -> int:
        return self.sim.spec.ping_interval_s


@pytest.fixture(scope="module", params=CASES, ids=[f"{c}s" for c in CASES])
def month(request) -> Month:  # type: ignore[no-untyped-def]
    # module scope + params: pytest runs every test of one interval together, so each month is made once
    sim = _sim(request.param)
    truth, states = ground_truth(sim, [MONTH])
    return Month(request.param, sim, _pings(sim), truth, states)


def test_miles_per_vehicle_and_per_state_match_the_ground_truth_at_every_interval(month: Month) -> None:
    rows = walk.compute(builtin_flow("distance@2"), FlowInput("fleet-a", MONTH, {"pings": month.table}, True)).to_pylist()
    miles: dict[str, float] = defaultdict(float)
    states: dict[tuple[str, str], float] = {}
    for r in rows:
        if r["vehicle_id"] is not None:
            miles[r["vehicle_id"]] += r["miles"]
            states[(r["vehicle_id"], r["state"])] = r["miles"]
    for t in month.truth.to_pylist():
        assert miles[t["vehicle_id"]] == pytest.approx(t["miles"], rel=0.005), t["vehicle_id"]
    big = [s for s in month.states.to_pylist() if s["miles"] > 10]
    for s in big:
        assert states.get((s["vehicle_id"], s["state"]), 0.0) == pytest.approx(s["miles"], rel=0.01), s
    assert len({s["state"] for s in big}) >= 10
    fleet = {r["state"]: r["miles"] for r in rows if r["vehicle_id"] is None}
    assert sum(fleet.values()) == pytest.approx(sum(miles.values()))


def _found(tr, det: harsh2.Detected, k: int) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(det.kind, det.row, det.ts_ms) if kk == k]


@pytest.mark.parametrize("kind", ["harsh_brake", "harsh_accel"])
def test_gps_harsh_events_at_1s_find_clear_events_and_elsewhere_are_null_with_a_reason(landed, kind: str) -> None:
    sim, out, pings = landed
    rows = _vehicles(out["harsh"])
    fleet = [r for r in out["harsh"] if r["vehicle_id"] is None][0]
    if sim.spec.ping_interval_s == 1:
        tr = load(pings)
        det = harsh2.detect(tr)
        truth = true_events(sim, MONTH, kind)
        m = match(truth, _found(tr, det, harsh2.KINDS.index(kind)), tol_ms=9_000)
        assert m["clear"] >= 40 and m["near"] >= 15  # near-threshold events too, for the rates to mean something
        assert m["recall_clear"] >= 0.95 and m["spurious"] <= 0.05, m
        assert all(r[f"{kind}_measurable"] and r[f"{kind}_source"] == "gps" and r[f"{kind}_reason"] is None
                   for r in rows.values())
        assert fleet[f"{kind}s"] == m["found"]  # the committed feature counts exactly these detections
    else:  # 5 s: a pair's mean rate cannot tell a 1 s harsh brake from a firm ordinary stop
        for r in out["harsh"]:
            assert r[f"{kind}s"] is None and r[f"{kind}s_per_1000_mi"] is None and r[f"{kind}_source"] is None
            assert r[f"{kind}_measurable"] is False and "5 s apart" in r[f"{kind}_reason"]
        assert all(r["sharp_turn_measurable"] and r["sharp_turns"] is not None for r in out["harsh"])


def test_sharp_turns_are_found_at_1_to_5s_devices_without_heading_included(month: Month) -> None:
    tr = load(month.table)
    det = harsh2.detect(tr)
    if month.interval_s > harsh2.TURN_LIMIT_S:  # 30 s: no two pings within a 10 s turn window
        assert not det.measurable[:, 2].any() and all("30 s" in r[2] for r in det.reason)
        return
    found = _found(tr, det, 2)
    truth = true_events(month.sim, MONTH, "sharp_turn")
    m = match(truth, found, tol_ms=(month.interval_s + 8) * 1000)
    if month.interval_s > 5:  # 10 s: measurable, so whatever it reports must be mostly real
        assert m["spurious"] <= 0.10, m
        return
    assert m["clear"] >= 40 and m["recall_clear"] >= 0.95 and m["spurious"] <= 0.05, m
    headless = {v.vehicle_id for v in month.sim.vehicles if not v.receiver.has_heading}
    assert headless, "the fleet has devices without heading"
    mine = match([t for t in truth if t[0] in headless], [f for f in found if f[0] in headless],
                 (month.interval_s + 8) * 1000)
    assert mine["clear"] >= 5 and mine["recall_clear"] >= 0.95 and mine["spurious"] <= 0.05, mine


def test_speeding_episodes_match_the_true_ones_despite_noisy_pings(month: Month) -> None:
    tr = load(month.table)
    owner, first, _ = speed2.episodes(tr)
    found = [(tr.vehicles[v], int(tr.ts[f])) for v, f in zip(owner, first)]
    m = match(true_events(month.sim, MONTH, "speeding"), found, tol_ms=(month.interval_s + 5) * 1000)
    if month.interval_s <= 5:
        assert m["clear"] >= 50 and m["recall_clear"] >= 0.95 and m["spurious"] <= 0.05, m
    else:  # 10 and 30 s: no bar in the issue, but what is reported must still be mostly real
        assert m["spurious"] <= 0.10, m


def test_committed_speeding_episodes_are_the_rule_s(landed) -> None:
    _, out, pings = landed
    assert [r for r in out["speed"] if r["vehicle_id"] is None][0]["speeding_episodes"] == \
        speed2.episodes(load(pings))[0].size


def test_tsp_reported_events_are_counted_exactly_and_say_so(tmp_path: Path) -> None:
    """Pings and safety events pulled from the sandbox over HTTP; harsh v2 counts the TSP's events."""
    with SandboxServer(sandbox_config(samsara_rate_per_s=5000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        fleet = "acme-freight"
        store = LocalStore(tmp_path / "store")
        connector = connect(server, "samsara", fleet, manifest, Vault(Fernet.generate_key().decode()))
        sim = server.world.sims[fleet]
        start, now = sim.spec.history_start_s * 1000, server.world.clock.now_ms()
        opts = PullOptions(work_dir=tmp_path)
        pull_fleet(connector, store, manifest, fleet, start, now, opts)
        pull_events(connector, store, manifest, fleet, start, now, opts)
        months = sorted({p.month for p in manifest.raw_partitions(fleet, "events")})
        assert months
        results = execute(manifest, plan(manifest, [builtin_flow("harsh@3")]), [builtin_flow("harsh@3")], store.url, None, tmp_path / "c",
                          now)
        assert all(r.status == "succeeded" for r in results), [r.error for r in results]
        by_month = {r.month: pq.read_table(store.path(r.outputs[0])).to_pylist() for r in results}
    checked = 0
    for month in months:
        lo, hi = month_bounds_ms(month)
        rows = _vehicles(by_month[month])
        for v in sim.vehicles:
            want = {k: 0 for k in harsh2.KINDS}
            for e in sim.events(v, lo, min(hi, now)):
                if e.kind in want:
                    want[e.kind] += 1
            for k, n in want.items():
                r = rows[v.vehicle_id]
                assert (r[f"{k}s"], r[f"{k}_source"], r[f"{k}_measurable"]) == (n, "tsp:samsara", True), (month, k)
                checked += n
    # 30 s pings: without the TSP these would be null (GPS cannot measure braking from them)
    assert checked > 0 and sim.spec.ping_interval_s == 30


def test_radius_class_is_exact_and_the_daily_radius_close(landed) -> None:
    sim, out, _ = landed
    truth = {t["vehicle_id"]: t for t in ground_truth(sim, [MONTH])[0].to_pylist()}
    rows = _vehicles(out["radius"])
    classes = set()
    for v in sim.vehicles:
        r, t = rows[v.vehicle_id], truth[v.vehicle_id]
        expected = radius.radius_class(t["p90_daily_max_from_home_mi"])
        assert r["radius_class"] == expected, (v.vehicle_id, v.kind, r, t)
        classes.add(expected)
        # Garaging is inferred within a few hundred metres of the true yard.
        assert abs(r["garaging_lat"] - v.home.lat) < 0.005 and abs(r["garaging_lon"] - v.home.lon) < 0.005
        assert r["max_daily_radius_mi"] == pytest.approx(t["max_from_home_mi"], rel=0.01, abs=0.5)
    assert classes == {"local", "intermediate", "long_haul"}


def test_driving_hours_match_the_ground_truth(landed) -> None:
    sim, out, _ = landed
    truth = {t["vehicle_id"]: t for t in ground_truth(sim, [MONTH])[0].to_pylist()}
    for flow in ("trips", "fatigue"):
        for vid, r in _vehicles(out[flow]).items():
            assert r["driving_hours"] == pytest.approx(truth[vid]["driving_hours"], rel=0.02), (flow, vid)
    t = _vehicles(out["trips"])
    assert all(r["trips"] >= r["active_days"] > 0 for r in t.values())
    s = _vehicles(out["speed"])
    for vid, r in s.items():
        assert r["moving_hours"] <= t[vid]["driving_hours"] + 0.01
        assert r["max_mph"] < 90 and r["p95_mph"] <= r["max_mph"]
    fleet = [r for r in out["trips"] if r["vehicle_id"] is None][0]
    assert fleet["trips"] == sum(r["trips"] for r in t.values())
    assert fleet["driving_hours"] == pytest.approx(sum(r["driving_hours"] for r in t.values()))


def test_outputs_match_their_declared_schemas(landed) -> None:
    _, out, _ = landed
    for f in FLOWS:
        assert pa.Table.from_pylist(out[f.name], f.schema).num_rows == len(out[f.name]) > 0
        assert sum(r["vehicle_id"] is None for r in out[f.name]) >= 1  # the fleet roll-up
