"""Features against the simulator's ground truth (issue 5's acceptance thresholds).

Each case lands one simulated month through the real writer, runs the flows through the real
planner and executor, and compares what they committed with the simulator's noise-free truth.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.months import month_bounds_ms
from ingest.executor import execute
from ingest.flows import distance, fatigue, harsh, radius, speed, trips
from ingest.flows.track import load
from ingest.planner import plan
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.groundtruth import ground_truth
from sandbox.simulator import FleetSimulator, FleetSpec
from tests.pings import sim_table
from tests.test_writer import write

MONTH = "2025-03"
FLOWS = [distance.FLOW, trips.FLOW, speed.FLOW, radius.FLOW, fatigue.FLOW, harsh.FLOW]


@lru_cache(maxsize=4)
def _sim(interval: int, vehicles: int = 12, seed: int = 31, event_rate: float = 3.0) -> FleetSimulator:
    return FleetSimulator(FleetSpec("fleet-a", seed, vehicles, datetime(2025, 1, 1, tzinfo=timezone.utc),
                                    ping_interval_s=interval, event_rate=event_rate))


@pytest.fixture(scope="module", params=[1, 5], ids=["1s", "5s"])
def landed(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One month of a 12-truck fleet committed and run through every flow: (sim, outputs by flow, pings)."""
    interval = request.param
    tmp = tmp_path_factory.mktemp(f"truth{interval}")
    sim = _sim(interval)
    store = LocalStore(tmp / "store")
    with Manifest(tmp / "m.duckdb") as m:
        write(store, m, [sim_table(sim, [MONTH])], tmp)
        results = execute(m, plan(m, FLOWS), FLOWS, store.url, None, tmp / "c", 1_900_000_000_000)
        [part] = m.raw_partition("fleet-a", "pings", MONTH).files
    assert all(r.status == "succeeded" for r in results), [r.error for r in results]
    outputs = {r.task.flow: pq.read_table(store.path(r.outputs[0])).to_pylist() for r in results}
    return sim, outputs, pq.read_table(store.path(part))


def _vehicles(rows: list[dict]) -> dict[str, dict]:
    return {r["vehicle_id"]: r for r in rows if r["vehicle_id"] is not None}


def test_miles_and_miles_per_state_match_the_ground_truth(landed) -> None:
    sim, out, _ = landed
    truth, truth_states = ground_truth(sim, [MONTH])
    miles: dict[str, float] = defaultdict(float)
    states: dict[tuple[str, str], float] = {}
    for r in out["distance"]:
        if r["vehicle_id"] is not None:
            miles[r["vehicle_id"]] += r["miles"]
            states[(r["vehicle_id"], r["state"])] = r["miles"]
    for t in truth.to_pylist():
        assert miles[t["vehicle_id"]] == pytest.approx(t["miles"], rel=0.01), t["vehicle_id"]
    big = [s for s in truth_states.to_pylist() if s["miles"] > 10]
    for s in big:
        assert states.get((s["vehicle_id"], s["state"]), 0.0) == pytest.approx(s["miles"], rel=0.02), s
    assert len({s["state"] for s in big}) >= 10
    fleet = {r["state"]: r["miles"] for r in out["distance"] if r["vehicle_id"] is None}
    assert sum(fleet.values()) == pytest.approx(sum(miles.values()))


def _observable_events(sim: FleetSimulator, kind: str) -> list[tuple[str, int]]:
    """Injected events of `kind`, minus those inside a device-offline gap (no ping saw them)."""
    lo, hi = month_bounds_ms(MONTH)
    found = []
    for v in sim.vehicles:
        for day in sim.day_tracks(v, lo, hi):
            gap = day.offline
            for e in day.truth.events:
                unseen = gap is not None and gap[0] * 1000 - 10_000 <= e.ts_ms < gap[1] * 1000 + 10_000
                if e.kind == kind and lo <= e.ts_ms < hi and not unseen:
                    found.append((v.vehicle_id, e.ts_ms))
    return found


def _match(truth: list[tuple[str, int]], found: list[tuple[str, int]], tol_ms: int) -> tuple[float, float]:
    """(recall, spurious share): a detection matches an injected event of its vehicle within tol_ms."""
    by_vehicle: dict[str, np.ndarray] = defaultdict(lambda: np.empty(0, np.int64))
    for vid in {v for v, _ in truth}:
        by_vehicle[vid] = np.array(sorted(t for v, t in truth if v == vid), np.int64)
    hit: set[tuple[str, int]] = set()
    spurious = 0
    for vid, ts in found:
        times = by_vehicle[vid]
        near = times[np.abs(times - ts) <= tol_ms]
        if near.size:
            hit.add((vid, int(near[np.argmin(np.abs(near - ts))])))
        else:
            spurious += 1
    return len(hit) / len(truth), spurious / max(len(found), 1)


@pytest.mark.parametrize("kind", harsh.KINDS)
def test_injected_harsh_events_are_found_with_few_spurious_ones(landed, kind: str) -> None:
    sim, out, pings = landed
    truth = _observable_events(sim, kind)
    assert len(truth) >= 50  # enough events for the rates to mean something
    tr = load(pings)
    ev = harsh.detect(tr)
    k = harsh.KINDS.index(kind)
    found = [(tr.vehicles[tr.vehicle_index[r]], int(t)) for kk, r, t in zip(ev.kind, ev.row, ev.ts_ms) if kk == k]
    recall, spurious = _match(truth, found, tol_ms=(sim.spec.ping_interval_s + 8) * 1000)
    assert recall >= 0.90, (kind, recall)
    assert spurious <= 0.05, (kind, spurious)
    # The committed feature counts exactly these detections.
    fleet = [r for r in out["harsh"] if r["vehicle_id"] is None][0]
    assert fleet[f"{kind}s"] == len(found)


def test_speeding_episodes_match_the_injected_ones(landed) -> None:
    sim, out, pings = landed
    tr = load(pings)
    owner, first, _ = speed.episodes(tr)
    found = [(tr.vehicles[v], int(tr.ts[f])) for v, f in zip(owner, first)]
    recall, spurious = _match(_observable_events(sim, "speeding"), found, tol_ms=(sim.spec.ping_interval_s + 5) * 1000)
    assert recall >= 0.90 and spurious <= 0.05, (recall, spurious)
    assert [r for r in out["speed"] if r["vehicle_id"] is None][0]["speeding_episodes"] == len(found)


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
