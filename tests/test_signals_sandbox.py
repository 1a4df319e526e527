"""The sandbox's new signals (docs/sandbox.md, "Sampling, roads and odometers"): each behaviour is there."""

from __future__ import annotations

import dataclasses

import numpy as np

from sandbox.messy import messy_spec
from sandbox.odometer import SPN245_QUANTUM_MI
from sandbox.simulator import FleetSimulator

T0 = 1_741_000_000_000  # 2025-03-03
DAY_MS = 86_400_000


def test_event_based_logging_pings_sparsely_on_straight_roads_and_densely_in_turns():
    sim = FleetSimulator(dataclasses.replace(messy_spec("event", 4, 11), road_curvature_deg=0.0))
    for v in sim.vehicles:
        c = sim.pings(v, T0, T0 + 3 * DAY_MS)
        dt = np.diff(c.ts_ms) / 1000
        moving = (c.speed_mph[:-1] > 40) & (c.speed_mph[1:] > 40)
        if not moving.any():
            continue
        gaps = dt[moving]
        assert gaps.max() <= 100 + 61  # the 100 s timeout, plus a burst of lost pings at most
        assert 15 < np.median(gaps) <= 100  # about 1 km at highway speed
        assert (gaps <= 5).any()  # turns, stops and starts log densely


def test_default_fleets_keep_the_exact_odometer_and_time_based_pings():
    spec = messy_spec("5", 2, 11)
    plain = FleetSimulator(dataclasses.replace(spec, logging_mode="time", road_curvature_deg=0.0,
                                               odometer_realism=False, speed_spike_rate=0.0))
    c = plain.pings(plain.vehicles[0], T0, T0 + 2 * DAY_MS)
    assert np.isfinite(c.odometer_mi).all() and (np.diff(c.odometer_mi) >= 0).all()
    assert plain.vehicles[0].odometer is None


def test_ecu_odometers_step_reset_glitch_go_missing_and_are_sometimes_absent():
    sim = FleetSimulator(dataclasses.replace(messy_spec("30", 12, 5), no_odometer_share=0.25))
    seen = {"absent": 0, "missing": 0, "reset_or_glitch": 0, "steps": 0}
    for v in sim.vehicles:
        assert v.odometer is not None
        c = sim.pings(v, T0, T0 + 28 * DAY_MS)
        o = c.odometer_mi
        if not v.odometer.present:
            assert np.isnan(o).all()
            seen["absent"] += 1
            continue
        seen["missing"] += int(np.isnan(o).any())
        d = np.diff(o[np.isfinite(o)])
        seen["reset_or_glitch"] += int((d < 0).any())
        steps = np.round(o[np.isfinite(o)] / SPN245_QUANTUM_MI, 6)
        seen["steps"] += int(np.allclose(steps, np.round(steps), atol=1e-3))
    assert seen["absent"] >= 1 and seen["missing"] >= 3 and seen["reset_or_glitch"] >= 1
    assert seen["steps"] == 12 - seen["absent"]  # every reading is a whole number of 0.125 km


def test_an_ecu_odometer_tracks_the_road_within_its_calibration_on_whole_days():
    sim = FleetSimulator(dataclasses.replace(messy_spec("60", 6, 5), no_odometer_share=0.0))
    for v in sim.vehicles:
        for day in sim.day_tracks(v, T0, T0 + 10 * DAY_MS):
            o, miles = day.pings.odometer_mi, sum(day.truth.miles.values())
            if miles < 20 or np.isnan(o).any() or (np.diff(o) < 0).any() or (np.diff(o) > 100).any():
                continue  # a day with a missing stretch, a reset or a glitch
            assert abs((o[-1] - o[0]) / miles - 1) < 0.012


def test_bends_lengthen_roads_and_outliers_appear_at_the_stated_rate():
    spec = messy_spec("1", 2, 5)
    bent, straight = FleetSimulator(spec), FleetSimulator(dataclasses.replace(spec, road_curvature_deg=0.0))
    for v_b, v_s in zip(bent.vehicles, straight.vehicles):
        mb = sum(sum(t.truth.miles.values()) for t in bent.day_tracks(v_b, T0, T0 + 3 * DAY_MS))
        ms = sum(sum(t.truth.miles.values()) for t in straight.day_tracks(v_s, T0, T0 + 3 * DAY_MS))
        if ms > 50:
            assert 1.01 < mb / ms < 1.08
    c = bent.pings(bent.vehicles[0], T0, T0 + 3 * DAY_MS)
    jumps = np.abs(np.diff(c.speed_mph))[np.diff(c.ts_ms) == 1000]
    share = (jumps >= 5).mean()
    assert 0.001 < share < 0.01  # 0.2% of pings are outliers, each makes two 5+ mph steps
