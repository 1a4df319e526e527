"""The harsh detector of ingest/signals on messy signals: noise, outliers, dropouts, sparse pings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from ingest.flows.harsh import detect as harsh_detect
from ingest.flows.track import load
from ingest.signals import harsh
from ingest.signals.series import VehicleSeries, from_arrays
from sandbox.groundtruth import match
from sandbox.messy import messy_spec
from sandbox.simulator import FleetSimulator

T0 = 1_741_000_000_000  # 2025-03-03, ms


def _line(speed: np.ndarray, dt_s: np.ndarray | None = None, seed: int = 1, noise: float = 0.0,
          wild: dict[int, float] | None = None) -> VehicleSeries:
    """A truck heading east at the given true speeds (mph): fixes with 0.5 m of jitter, Doppler
    noise `noise`, and `wild` readings (index -> mph) that the positions do not follow."""
    r = np.random.default_rng(seed)
    n = speed.size
    dt = np.ones(n - 1) if dt_s is None else dt_s
    t = np.concatenate([[0.0], np.cumsum(dt)])
    east_m = np.concatenate([[0.0], np.cumsum((speed[:-1] + speed[1:]) / 2 * 0.44704 * dt)])
    lat = 39.0 + r.normal(0, 0.5, n) / 111_000
    lon = -100.0 + (east_m + r.normal(0, 0.5, n)) / (111_000 * np.cos(np.radians(39.0)))
    reported = np.round(np.maximum(speed + r.normal(0, noise, n), 0), 1)
    for i, mph in (wild or {}).items():
        reported[i] = mph
    return from_arrays("v", (T0 + t * 1000).astype(np.int64), lat, lon, reported)


def _cruise(n: int = 600, mph: float = 60.0) -> np.ndarray:
    return np.full(n, mph)


def test_a_single_wild_speed_reading_is_neither_a_brake_nor_an_acceleration():
    # one reading 15 mph low (a 15 mph/s "drop" and "rise" to a pair rule), one 18 mph high
    found = harsh.detect(_line(_cruise(), noise=0.4, wild={300: 45.0, 400: 78.0}))
    assert found.reason is None
    assert found.brake_ms.size == 0 and found.accel_ms.size == 0


def test_two_wild_readings_in_a_row_are_not_an_event_either():
    found = harsh.detect(_line(_cruise(), noise=0.4, wild={300: 42.0, 301: 42.4}))
    assert found.brake_ms.size == 0 and found.accel_ms.size == 0


def test_a_real_harsh_brake_among_noise_is_found_once_at_its_start():
    sp = _cruise()
    sp[300:305] = 60 - 8.5 * np.arange(1, 6)  # 8.5 mph/s for 5 s, then it stays at 17.5
    sp[305:] = 17.5
    found = harsh.detect(_line(sp, noise=0.6))
    assert found.brake_ms.size == 1
    assert abs(int(found.brake_ms[0]) - (T0 + 299_000)) <= 2000
    assert found.accel_ms.size == 0


def test_a_firm_ordinary_stop_is_not_harsh():
    sp = _cruise()
    sp[300:310] = 60 - 6.0 * np.arange(1, 11)  # 6 mph/s: the firmest ordinary stops
    sp[310:] = 0.0
    assert harsh.detect(_line(sp, noise=0.6)).brake_ms.size == 0


def test_a_pair_stretched_by_a_lost_ping_is_not_judged():
    sp = _cruise(300)
    sp[150:] = 40.0
    dt = np.ones(299)
    dt[149] = 3.0  # 20 mph lost over 3 s (a dropout over an ordinary slowdown)
    assert harsh.detect(_line(sp, dt)).brake_ms.size == 0


def test_sparse_pings_are_null_with_a_reason_not_zero():
    found = harsh.detect(_line(_cruise(200), np.full(199, 5.0)))
    assert found.brake_ms.size == 0
    assert found.reason is not None and "5 s apart" in found.reason


def test_messy_1s_fleet_finds_the_clear_events_where_the_pair_rule_drowns_in_outliers():
    """Four trucks, ten days of 1 s pings with noise, outliers, dropouts, bursts and offline gaps
    (events at 4x the messy fleet's rate, so that ten days hold enough of them)."""
    sim = FleetSimulator(dataclasses.replace(messy_spec("1", 4, 7), event_rate=12.0))
    lo, hi = T0, T0 + 10 * 86_400_000
    found: dict[str, list[tuple[str, int]]] = {"harsh_brake": [], "harsh_accel": []}
    old: dict[str, list[tuple[str, int]]] = {"harsh_brake": [], "harsh_accel": []}
    truth: dict[str, list[tuple[str, int, bool, bool]]] = {"harsh_brake": [], "harsh_accel": []}
    for v in sim.vehicles:
        c = sim.pings(v, lo, hi)
        s = from_arrays(v.vehicle_id, c.ts_ms, c.lat, c.lon, c.speed_mph, c.heading_deg, c.odometer_mi)
        det = harsh.detect(s)
        found["harsh_brake"] += [(v.vehicle_id, int(t)) for t in det.brake_ms]
        found["harsh_accel"] += [(v.vehicle_id, int(t)) for t in det.accel_ms]
        tr = load(pa.table({"vehicle_id": [v.vehicle_id] * len(c), "ts": pa.array(c.ts_ms, pa.timestamp("ms")),
                            "lat": c.lat, "lon": c.lon, "speed_mph": c.speed_mph, "heading_deg": c.heading_deg}))
        d2 = harsh_detect.detect(tr)
        for k, kind in enumerate(("harsh_brake", "harsh_accel")):
            old[kind] += [(v.vehicle_id, int(t)) for kk, t in zip(d2.kind, d2.ts_ms) if kk == k]
        for e in sim.events(v, lo, hi):
            if e.kind in truth:
                a, b = np.searchsorted(c.ts_ms, [e.ts_ms - 2000, e.ts_ms + (e.duration_s + 3) * 1000])
                window = c.ts_ms[max(a - 1, 0):b + 1]
                covered = a > 0 and b < len(c) and np.diff(window).max() <= 1500
                truth[e.kind].append((v.vehicle_id, e.ts_ms, e.near_threshold, bool(covered)))
    for kind in truth:
        new_m, old_m = match(truth[kind], found[kind], 9000), match(truth[kind], old[kind], 9000)
        assert new_m["clear"] >= 10, new_m  # enough events for the figures to mean something
        assert new_m["recall_clear"] >= 0.95, (kind, new_m)
        assert new_m["spurious"] <= 0.05, (kind, new_m)
        assert old_m["spurious"] > 0.5, (kind, old_m)  # the outliers are there: the old pair rule counts them
