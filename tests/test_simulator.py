from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from geo.distance import METERS_PER_MILE, haversine_m
from sandbox.groundtruth import ground_truth
from sandbox.simulator import (
    HARSH_ACCEL_MPHPS,
    HARSH_BRAKE_MPHPS,
    NEAR,
    SHARP_TURN_DEG,
    SPEEDING_MPH,
    FleetSimulator,
    FleetSpec,
    _brake,
    _pull_away,
    _scurve,
    month_bounds_ms,
)

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def spec(**kw: object) -> FleetSpec:
    base = dict(fleet_id="f", seed=5, n_vehicles=6, history_start=START, ping_interval_s=5)
    return FleetSpec(**{**base, **kw})  # type: ignore[arg-type]


def _bytes(sim: FleetSimulator, month: str) -> bytes:
    lo, hi = month_bounds_ms(month)
    out = b""
    for v in sim.vehicles:
        p = sim.pings(v, lo, hi)
        out += p.vehicle_id.encode() + b"".join(getattr(p, f).tobytes() for f in
                                                ("ts_ms", "lat", "lon", "speed_mph", "heading_deg", "odometer_mi"))
    return out


def test_same_inputs_give_identical_bytes_and_other_seeds_differ() -> None:
    a = _bytes(FleetSimulator(spec()), "2024-06")
    b = _bytes(FleetSimulator(spec()), "2024-06")
    assert a == b and len(a) > 100_000
    assert _bytes(FleetSimulator(spec(seed=6)), "2024-06") != a


def test_window_order_does_not_change_content() -> None:
    # A day generated cold, late in a run, or after its neighbours is the same day.
    lo, hi = month_bounds_ms("2024-09")
    mid = lo + 11 * 86_400_000 + 3_600_000 * 7
    s1 = FleetSimulator(spec())
    whole = s1.pings(2, lo, hi)
    s2 = FleetSimulator(spec())
    second = s2.pings(2, mid, hi)
    first = s2.pings(2, lo, mid)
    assert np.array_equal(whole.ts_ms, np.concatenate([first.ts_ms, second.ts_ms]))
    assert np.array_equal(whole.lat, np.concatenate([first.lat, second.lat]))
    assert np.array_equal(whole.odometer_mi, np.concatenate([first.odometer_mi, second.odometer_mi]))


def test_one_day_of_a_two_year_fleet_generates_about_one_day() -> None:
    sim = FleetSimulator(spec(history_start=datetime(2023, 1, 1, tzinfo=timezone.utc)))
    lo = int(datetime(2024, 12, 10, tzinfo=timezone.utc).timestamp() * 1000)
    calls = []
    original = sim._generate_day
    sim._generate_day = lambda v, d: calls.append(d) or original(v, d)  # type: ignore[method-assign]
    p = sim.pings(0, lo, lo + 86_400_000)
    assert len(p) > 0
    # A UTC day straddles at most two local "day blocks" of the vehicle.
    assert 1 <= len(calls) <= 2


def test_pings_are_physically_plausible() -> None:
    sim = FleetSimulator(spec())
    lo, hi = month_bounds_ms("2024-03")
    for v in sim.vehicles:
        p = sim.pings(v, lo, hi)
        assert len(p) > 1000
        assert np.all(np.diff(p.ts_ms) >= 5000), "never closer than the ping interval"
        assert np.all((p.ts_ms >= lo) & (p.ts_ms < hi))
        assert np.all(np.diff(p.odometer_mi) >= -1e-9), "odometer never runs backwards"
        assert p.speed_mph.min() >= 0 and p.speed_mph.max() < 90
        assert np.all((p.lat > 24) & (p.lat < 50) & (p.lon > -125) & (p.lon < -66))
        assert np.all((p.heading_deg >= 0) & (p.heading_deg < 360))
        # Consecutive 5 s pings cannot be further apart than the speed allows (plus GPS noise).
        close = np.diff(p.ts_ms) == 5000
        d = haversine_m(p.lat[:-1], p.lon[:-1], p.lat[1:], p.lon[1:])[close]
        assert d.max() < 5 * 90 * 0.44704 + 30


def test_history_start_and_now_bound_the_data() -> None:
    sim = FleetSimulator(spec())
    p = sim.pings(0, 0, int(START.timestamp() * 1000) + 86_400_000)
    assert len(p) > 0 and p.ts_ms.min() >= int(START.timestamp() * 1000)


def test_ground_truth_agrees_with_the_pings() -> None:
    sim = FleetSimulator(spec(ping_interval_s=1, offline_gap_rate=0.0, n_vehicles=5))
    month = "2024-04"
    lo, hi = month_bounds_ms(month)
    truth, states = ground_truth(sim, [month])
    rows = {r["vehicle_id"]: r for r in truth.to_pylist()}
    for v in sim.vehicles:
        r = rows[v.vehicle_id]
        p = sim.pings(v, lo, hi)
        assert r["pings"] == len(p)
        # Odometer and GPS path agree with the truth's miles (GPS error adds a little).
        odo = p.odometer_mi[-1] - p.odometer_mi[0]
        assert r["miles"] == pytest.approx(odo, rel=0.01, abs=2.0)
        moving = p.speed_mph[:-1] > 2
        gps = haversine_m(p.lat[:-1], p.lon[:-1], p.lat[1:], p.lon[1:])[moving].sum() / METERS_PER_MILE
        assert gps == pytest.approx(r["miles"], rel=0.02)
        per_state = [s["miles"] for s in states.to_pylist() if s["miles"] and s["vehicle_id"] == v.vehicle_id]
        assert sum(per_state) == pytest.approx(r["miles"], rel=1e-9)
        # Driving time: seconds at a clearly moving speed, less what dropouts and bursts lost.
        assert (p.speed_mph > 2).sum() / 3600 == pytest.approx(r["driving_hours"], rel=0.05)
        # Radius class follows the vehicle's kind.
        if v.kind == "local":
            assert r["max_from_home_mi"] < 50
        elif v.kind == "longhaul" and r["miles"] > 0:
            assert r["max_from_home_mi"] > 120
        events = sim.events(v, lo, hi)
        for kind in ("harsh_brake", "harsh_accel", "sharp_turn", "speeding"):
            assert r[kind] == sum(e.kind == kind for e in events)
    assert sum(r["harsh_brake"] + r["sharp_turn"] + r["speeding"] for r in rows.values()) > 0


def test_injected_events_peak_at_or_above_their_thresholds_near_ones_within_twenty_percent() -> None:
    sim = FleetSimulator(spec(n_vehicles=8, event_rate=4.0))
    lo, hi = month_bounds_ms("2024-04")
    events = [e for v in sim.vehicles for e in sim.events(v, lo, hi)]
    limits = {"harsh_brake": HARSH_BRAKE_MPHPS, "harsh_accel": HARSH_ACCEL_MPHPS, "sharp_turn": SHARP_TURN_DEG}
    for kind, limit in limits.items():
        mags = np.array([e.magnitude for e in events if e.kind == kind]) / limit
        near = np.array([e.near_threshold for e in events if e.kind == kind])
        assert mags.size >= 20 and mags.min() >= 1.0 and mags.max() <= 2.3, kind
        assert np.array_equal(near, mags < NEAR), kind
        assert 0.15 <= near.mean() <= 0.6, kind  # near-threshold events as well as clear ones
    assert all(e.duration_s >= 60 and e.magnitude > SPEEDING_MPH for e in events if e.kind == "speeding")


def test_speed_changes_are_jerk_limited_s_curves() -> None:
    sp = _scurve(60.0, 0.0, 2.5, 1.5)
    rate = -np.diff(np.concatenate([[60.0], sp]))
    assert sp[-1] == 0.0 and np.all(np.diff(sp) <= 0)
    assert rate.max() <= 2.5 + 1e-9 and rate.max() >= 2.4  # reaches and holds its peak
    assert np.abs(np.diff(rate)).max() <= 1.5 + 1e-9  # the rate itself changes no faster than the jerk
    assert rate[0] < 1.0 and rate[-1] < 1.0  # eases in and out
    r = np.random.default_rng(3)
    peaks = np.array([(-np.diff(np.concatenate([[50.0], _brake(r, 50.0, 0.0)]))).max() for _ in range(2000)])
    assert peaks.max() <= 6.0 and np.quantile(peaks, 0.5) < 2.0
    assert 0.02 <= (peaks >= 3.5).mean() <= 0.07  # a few percent of firm stops
    accel = np.array([np.diff(_pull_away(r, 0.0, 60.0)).max() for _ in range(300)])
    assert accel.min() >= 0.9 and accel.max() <= 2.0


def test_devices_report_realistic_signal_errors() -> None:
    sim = FleetSimulator(spec(n_vehicles=10, ping_interval_s=1, interval_mix=(1, 2, 5, 10, 30), no_heading_share=0.3))
    lo, _ = month_bounds_ms("2024-04")
    hi = lo + 10 * 86_400_000
    intervals, noise, drift, headless, lost = set(), [], 0, 0, []
    for v in sim.vehicles:
        p = sim.pings(v, lo, hi)
        dt = np.diff(p.ts_ms) / 1000
        moving = (p.speed_mph[:-1] > 30) & (p.speed_mph[1:] > 30)
        intervals.add(float(np.median(dt[moving])))
        assert float(np.median(dt[moving])) == v.interval_s
        assert np.all(np.round(p.speed_mph, 1) == p.speed_mph)  # reported to 0.1 mph
        if v.interval_s == 1:
            steady = moving & (dt == 1)
            noise.append(np.std(np.diff(p.speed_mph)[steady]))
        # dropouts and bursts: a few percent of the driving pings never arrive
        lost.append(1 - moving.sum() / (dt[moving].sum() / v.interval_s))
        headless += bool(np.isnan(p.heading_deg).all())
        idle = (p.speed_mph > 0) & (p.speed_mph < 1.5)
        drift += bool(v.receiver.idle_drift_mph and idle.sum() > 20)
    assert intervals == {1.0, 2.0, 5.0, 10.0, 30.0}
    assert noise and all(0.05 < n < 1.2 for n in noise)  # 1 s speed differences carry the AR(1) noise
    assert 0.01 <= float(np.median(lost)) <= 0.08
    assert 1 <= headless <= 6 and drift >= 1


def test_jittered_devices_ping_off_the_grid_but_in_order() -> None:
    sim = FleetSimulator(spec(n_vehicles=2, jitter_s=1))
    lo, _ = month_bounds_ms("2024-04")
    hi = lo + 7 * 86_400_000
    p = sim.pings(0, lo, hi)
    dt = np.diff(p.ts_ms) / 1000
    assert dt.min() >= 3 and {4.0, 5.0, 6.0} <= set(dt.tolist())


def test_interstate_trips_cross_state_lines() -> None:
    sim = FleetSimulator(spec(n_vehicles=12))
    _, states = ground_truth(sim, ["2024-05"])
    per_vehicle: dict[str, set[str]] = {}
    for s in states.to_pylist():
        per_vehicle.setdefault(s["vehicle_id"], set()).add(s["state"])
    assert max(len(v) for v in per_vehicle.values()) >= 3


def test_spec_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="ping_interval_s"):
        spec(ping_interval_s=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        spec(history_start=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="interval_mix"):
        spec(interval_mix=(1, 7))
    with pytest.raises(ValueError, match="jitter_s"):
        spec(jitter_s=3)
