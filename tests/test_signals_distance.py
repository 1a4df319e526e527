"""Miles from the odometer or GPS, and state miles, on messy signals (ingest/signals/distance.py)."""

from __future__ import annotations

import numpy as np

from geo.distance import METERS_PER_MILE, consecutive_m
from geo.states import state_lookup
from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.registry import builtin
from ingest.signals import distance
from ingest.signals.series import VehicleSeries, from_arrays
from sandbox.groundtruth import month_table
from sandbox.messy import messy_spec
from sandbox.odometer import SPN245_QUANTUM_MI
from sandbox.simulator import FleetSimulator, month_bounds_ms

T0 = 1_741_000_000_000


def _road(n: int, every_s: float, mph: float = 60.0, seed: int = 3, lat: float = 39.0, lon0: float = -100.0,
          bend_deg: float = 0.0) -> tuple[VehicleSeries, float]:
    """(pings every `every_s` of a truck on a road that bends `bend_deg` each way, true miles)."""
    r = np.random.default_rng(seed)
    sec = np.arange(int(n * every_s) + 1, dtype=float)
    heading = np.radians(90.0 + bend_deg * np.sin(2 * np.pi * sec / 90.0))  # a bend every 1.5 km or so
    step = mph * 0.44704
    north = np.concatenate([[0.0], np.cumsum(step * np.cos(heading[:-1]))])
    east = np.concatenate([[0.0], np.cumsum(step * np.sin(heading[:-1]))])
    idx = np.arange(0, sec.size, int(every_s))
    lat_ = lat + (north[idx] + r.normal(0, 2.0, idx.size)) / 111_195
    lon_ = lon0 + (east[idx] + r.normal(0, 2.0, idx.size)) / (111_195 * np.cos(np.radians(lat)))
    true_mi = step * (idx[-1]) / METERS_PER_MILE
    odo = 120_000 + np.floor(step * idx / METERS_PER_MILE / SPN245_QUANTUM_MI) * SPN245_QUANTUM_MI
    speed = np.round(mph + r.normal(0, 0.5, idx.size), 1)
    return from_arrays("v", T0 + idx.astype(np.int64) * 1000, lat_, lon_, speed, None, odo), true_mi


def _with_odometer(s: VehicleSeries, odo: np.ndarray) -> VehicleSeries:
    return from_arrays(s.vehicle_id, s.ts_ms, s.lat, s.lon, s.speed_mph, s.heading_deg, odo)


def test_gps_miles_follow_the_bends_a_60s_chord_cuts():
    s, true_mi = _road(300, 60.0, bend_deg=25.0)
    s = _with_odometer(s, np.full(s.n, np.nan))
    chord_mi = float(consecutive_m(s.lat, s.lon).sum()) / METERS_PER_MILE
    est = distance.vehicle_miles(s)
    assert est.source == "gps"
    assert chord_mi / true_mi - 1 < -0.02  # the road really is one the chords cut
    assert abs(est.miles / true_mi - 1) < 0.005


def test_a_trustworthy_odometer_is_the_source():
    s, true_mi = _road(600, 30.0, bend_deg=10.0)
    est = distance.vehicle_miles(s)
    assert est.source == "odometer"
    assert abs(est.miles / true_mi - 1) < 0.001


def test_a_reset_and_a_glitch_are_bridged_with_gps_distance():
    s, true_mi = _road(600, 30.0, bend_deg=10.0)
    odo = s.odometer_mi.copy()
    odo[300:] = odo[300:] - odo[300] + 12.0  # the ECU swapped: the reading restarts at 12 mi
    odo[100] += 8_192.0  # one reading off by a bit flip
    est = distance.vehicle_miles(_with_odometer(s, odo))
    assert est.source == "odometer+gps"
    assert est.gps_miles < 0.02 * est.miles  # only the three broken spans fell back to GPS
    assert abs(est.miles / true_mi - 1) < 0.002


def test_a_missing_stretch_of_readings_is_spanned_by_the_readings_around_it():
    s, true_mi = _road(600, 30.0, bend_deg=25.0)
    odo = s.odometer_mi.copy()
    odo[200:400] = np.nan  # 100 minutes without a reading
    est = distance.vehicle_miles(_with_odometer(s, odo))
    assert est.source == "odometer"
    assert abs(est.miles / true_mi - 1) < 0.001


def test_an_odometer_that_disagrees_with_gps_beyond_the_bound_is_not_trusted():
    s, true_mi = _road(600, 30.0, bend_deg=10.0)
    odo = 120_000 + (s.odometer_mi - 120_000) * 1.06  # a wrong tyre size programmed: 6% long
    est = distance.vehicle_miles(_with_odometer(s, odo))
    assert est.source == "gps"
    assert abs(est.miles / true_mi - 1) < 0.005


def test_state_miles_split_where_the_line_between_two_fixes_crosses_the_border():
    """One 90 s pair on latitude 41.5 N across the Wyoming-Nebraska line (104.053 W)."""
    s = from_arrays("v", np.array([T0, T0 + 90_000]), np.array([41.5, 41.5]), np.array([-104.07, -104.04]),
                    np.array([63.0, 63.0]), None, np.array([1000.0, 1000.0 + 1.6]))
    miles, trusted = distance.odometer_pair_miles(s, distance.gps_pair_miles(s))
    split = distance.state_split(s, miles)
    assert trusted.all() and abs(sum(split.values()) - 1.6) < 1e-9  # scaled to the odometer's 1.6 mi
    # where the state polygons put the line: a scan every 3 m along the chord
    lon = np.linspace(-104.07, -104.04, 1001)
    in_wy = (state_lookup().code_of(np.full(lon.size, 41.5), lon) == "WY").mean()
    assert 0.5 < in_wy < 0.65
    assert abs(split["WY"] / 1.6 - in_wy) < 0.002 and abs(split["NE"] / 1.6 - (1 - in_wy)) < 0.002


def test_messy_60s_month_miles_within_half_a_percent_with_an_odometer_and_1_percent_without():
    """Six trucks, one month at 60 s: bends, outliers, offline gaps, resets, glitches, missing readings."""
    sim = FleetSimulator(messy_spec("60", 6, 31))
    month = "2025-03"
    lo, hi = month_bounds_ms(month)
    table = month_table(sim, month)
    old: dict[str, float] = {}
    for r in walk.compute(builtin()[("distance", 2)], FlowInput("f", month, {"pings": table}, True)).to_pylist():
        if r["vehicle_id"]:
            old[r["vehicle_id"]] = old.get(r["vehicle_id"], 0.0) + r["miles"]
    worst_old = 0.0
    sources = set()
    for v in sim.vehicles:
        true_mi = sum(t.truth.miles.get(month, 0.0) for t in sim.day_tracks(v, lo, hi))
        c = sim.pings(v, lo, hi)
        est = distance.vehicle_miles(from_arrays(v.vehicle_id, c.ts_ms, c.lat, c.lon, c.speed_mph, c.heading_deg,
                                                 c.odometer_mi))
        has_odometer = v.odometer is not None and v.odometer.present
        sources.add(est.source)
        assert (est.source != "gps") == has_odometer
        assert abs(est.miles / true_mi - 1) < (0.005 if has_odometer else 0.01), (v.kind, est, true_mi)
        worst_old = max(worst_old, abs(old[v.vehicle_id] / true_mi - 1))
    assert worst_old > 0.01  # the roads bend enough that chords alone miss
    assert "gps" in sources and sources - {"gps"}
