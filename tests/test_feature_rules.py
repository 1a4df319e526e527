"""The feature rules on hand-built tracks whose right answer is known exactly (the active versions;
the retired ones are held by their golden outputs, tests/test_walk.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from geo.distance import METERS_PER_MILE
from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.harsh import detect as harsh
from ingest.flows.track import load
from tests.support.flows import flow

DENVER = (39.74, -104.99)  # America/Denver: UTC-7 in January


def drive(plan: list[tuple[float, float]], start: datetime, interval: int = 5, origin=DENVER,
          vehicle: str = "v1", heading: float = 0.0) -> pa.Table:
    """Pings for a plan of (seconds, mph) steps from `origin`, sampled every `interval` s.

    Positive mph drives due north, negative due south, 0 is parked; speed changes are instant,
    which the rules under test do not mind.
    """
    velocity = np.concatenate([np.full(int(s), v, float) for s, v in plan])
    speeds = np.abs(velocity)
    north_m = np.concatenate([[0.0], np.cumsum(velocity * METERS_PER_MILE / 3600.0)[:-1]])
    t0 = int(start.timestamp())
    ts = t0 + np.arange(speeds.size)
    keep = (np.arange(speeds.size) % interval) == 0
    lat = origin[0] + np.degrees(north_m / 6_371_008.8)
    n = int(keep.sum())
    return pa.table({"vehicle_id": [vehicle] * n, "ts": pa.array(ts[keep] * 1000, pa.timestamp("ms", tz="UTC")),
                     "lat": lat[keep], "lon": np.full(n, origin[1]), "speed_mph": speeds[keep],
                     "heading_deg": np.full(n, heading)})


def run(flow, table: pa.Table) -> dict:  # type: ignore[no-untyped-def]
    out = walk.compute(flow, FlowInput("f", "2025-01", {"pings": table}, True)).to_pylist()
    return out[0]


H = 3600
JAN = datetime(2025, 1, 6, tzinfo=timezone.utc)


def test_a_stop_of_five_minutes_ends_a_trip_a_shorter_one_does_not() -> None:
    t = drive([(60, 0), (1800, 50), (240, 0), (1800, 50), (300, 0), (1800, 50), (60, 0)], JAN)
    r = run(flow("trips@3"), t)
    assert r["trips"] == 2  # the 4 min stop joins the first two drives, the 5 min stop splits
    assert r["driving_hours"] == pytest.approx(1.5, abs=0.01)
    assert r["trip_miles_mean"] == pytest.approx(37.5, rel=0.01)  # 50 and 25 miles
    assert r["trip_minutes_mean"] == pytest.approx((64 + 30) / 2, rel=0.01)  # a short stop is part of its trip


def test_a_gap_over_ten_minutes_ends_a_trip_even_while_moving() -> None:
    a = drive([(1800, 50)], JAN)
    b = drive([(1800, 50)], datetime.fromtimestamp(JAN.timestamp() + 1800 + 660, timezone.utc))
    assert run(flow("trips@3"), pa.concat_tables([a, b]))["trips"] == 2
    c = drive([(1800, 50)], datetime.fromtimestamp(JAN.timestamp() + 1800 + 540, timezone.utc))
    assert run(flow("trips@3"), pa.concat_tables([a, c]))["trips"] == 1


def test_night_driving_uses_local_time_where_the_truck_is() -> None:
    # 07:00-10:00 UTC is 00:00-03:00 in Denver (UTC-7): all of it is night there.
    t = drive([(3 * H, 55)], datetime(2025, 1, 6, 7, tzinfo=timezone.utc))
    r = run(flow("fatigue@3"), t)
    assert r["night_share"] == pytest.approx(1.0)
    # The same UTC hours on the US east coast (UTC-5) are 02:00-05:00: night too; in Tokyo it is afternoon.
    tokyo = drive([(3 * H, 55)], datetime(2025, 1, 6, 7, tzinfo=timezone.utc), origin=(35.68, 139.69))
    assert run(flow("fatigue@3"), tokyo)["night_share"] == pytest.approx(0.0)


def test_eleven_hour_duty_periods_and_eight_hour_stretches() -> None:
    # 9 h without a break, then 40 min off, then 3 h: one stretch over 8 h, one duty period over 11 h.
    t = drive([(9 * H, 55), (40 * 60, 0), (3 * H, 55)], JAN)
    r = run(flow("fatigue@3"), t)
    assert (r["stretches_over_8h"], r["duty_periods"], r["duty_periods_over_11h"]) == (1, 1, 1)
    assert r["max_stretch_hours"] == pytest.approx(9.0, abs=0.01)
    # Breaks of 30 min every 4 h keep every stretch short; 10 h off starts a new duty period.
    ok = drive([(4 * H, 55), (30 * 60, 0), (4 * H, 55), (10 * H, 0), (4 * H, 55)], JAN)
    r = run(flow("fatigue@3"), ok)
    assert (r["stretches_over_8h"], r["duty_periods"], r["duty_periods_over_11h"]) == (0, 2, 0)


def test_speed_times_above_limits_and_an_episode_needs_sixty_seconds() -> None:
    t = drive([(600, 60), (120, 78), (600, 68), (40, 78), (600, 60)], JAN, interval=1)
    r = run(flow("speed@3"), t)
    assert r["speeding_episodes"] == 1  # 40 s over 75 is not an episode
    assert r["speeding_minutes"] == pytest.approx(2.0, abs=0.05)
    assert r["hours_over_75"] == pytest.approx(160 / H, abs=2 / H)
    assert r["hours_over_65"] == pytest.approx(760 / H, abs=2 / H)
    assert r["max_mph"] == 78 and r["p95_mph"] == 78


@pytest.mark.parametrize("interval", [1, 5])
def test_harsh_braking_accounts_for_the_ping_interval(interval: int) -> None:
    brake = [(300, 60), (1, 52), (300, 40)]  # 8 mph lost in one second, then a steadier 40 mph
    ev = harsh.detect(load(drive(brake, JAN, interval=interval)))
    if interval == 1:
        assert list(ev.kind) == [0]
    else:  # 5 s apart, a second's brake cannot be told from a gentle one: not measured, and why
        assert ev.kind.size == 0 and not ev.measurable[0, 0] and "5 s apart" in str(ev.reason[0][0])
    routine = [(300, 60)] + [(1, 60 - 1.5 * k) for k in range(1, 14)] + [(300, 40.5)]  # 1.5 mph/s
    assert harsh.detect(load(drive(routine, JAN, interval=interval))).kind.size == 0


def test_pairs_too_far_apart_or_too_slow_are_not_judged() -> None:
    far = drive([(300, 60), (1, 52), (300, 40)], JAN, interval=12)  # 12 s apart: too sparse to judge
    assert harsh.detect(load(far)).kind.size == 0
    yard = drive([(60, 8), (1, 0), (60, 0)], JAN, interval=1)  # a yard stop at 8 mph
    assert harsh.detect(load(yard)).kind.size == 0


def test_a_sharp_turn_is_one_event_and_a_missing_heading_falls_back_to_the_track() -> None:
    a = drive([(60, 30)], JAN, interval=1, heading=0.0)
    b = drive([(60, 30)], datetime.fromtimestamp(JAN.timestamp() + 60, timezone.utc), interval=1, heading=70.0)
    t = pa.concat_tables([a, b])
    ev = harsh.detect(load(t))
    assert list(ev.kind) == [2] and ev.magnitude[0] == pytest.approx(70.0)
    # Without reported headings the bearing of travel stands in: due north all along, so no turn.
    no_heading = a.set_column(a.schema.get_field_index("heading_deg"), "heading_deg", pa.nulls(a.num_rows, pa.float64()))
    assert harsh.detect(load(no_heading)).kind.size == 0
    u_turn = pa.concat_tables([drive([(60, 30)], JAN, interval=1),
                               drive([(60, -30)], datetime.fromtimestamp(JAN.timestamp() + 60, timezone.utc), interval=1,
                                     origin=(DENVER[0] + np.degrees(0.5 * METERS_PER_MILE / 6_371_008.8), DENVER[1]))])
    u_turn = u_turn.set_column(u_turn.schema.get_field_index("heading_deg"), "heading_deg",
                               pa.nulls(u_turn.num_rows, pa.float64()))
    assert list(harsh.detect(load(u_turn)).kind) == [2]


def test_garaging_is_where_the_truck_sleeps_and_the_class_follows_the_p90() -> None:
    # 20 days out 30 mi and back to the yard, then one trip 120 mi north with a night there.
    days = []
    for d in range(20):
        morning = datetime.fromtimestamp(JAN.timestamp() + d * 86_400 + 14 * H, timezone.utc)  # 07:00 Denver
        days.append(drive([(1800, 60), (1800, 0), (1800, -60), (1, 0)], morning))
    far = (DENVER[0] + np.degrees(120 * METERS_PER_MILE / 6_371_008.8), DENVER[1])
    out = datetime.fromtimestamp(JAN.timestamp() + 20 * 86_400 + 14 * H, timezone.utc)
    days.append(drive([(2 * H, 60), (1, 0)], out))
    days.append(drive([(2 * H, -60), (1, 0)], datetime.fromtimestamp(out.timestamp() + 86_400, timezone.utc), origin=far))
    r = run(flow("radius@2"), pa.concat_tables(days))
    assert r["garaging_lat"] == pytest.approx(DENVER[0], abs=0.001)
    assert r["garaging_lon"] == pytest.approx(DENVER[1], abs=0.001)
    assert r["max_daily_radius_mi"] == pytest.approx(120.0, rel=0.01)
    assert r["p90_daily_radius_mi"] == pytest.approx(30.0, rel=0.01)
    assert r["radius_class"] == "local"  # one long run a month does not make a long-haul truck
    assert r["share_miles_beyond_50"] == pytest.approx(2 * 70 / (20 * 60 + 240), rel=0.01)


# --------------------------------------------------------------------------- v2 rules (issue 12)
def _with_speeds(t: pa.Table, speeds: np.ndarray) -> pa.Table:
    return t.set_column(t.schema.get_field_index("speed_mph"), "speed_mph", pa.array(speeds))


def test_harsh_v2_counts_a_clear_brake_but_not_a_firm_ordinary_stop_at_1s() -> None:
    cruise = [(600, 60)]
    brake = drive(cruise + [(1, 51), (1, 42), (300, 40)], JAN, interval=1)  # 9 mph/s for 2 s: one event
    det = harsh.detect(load(brake))
    assert list(det.kind) == [0] and det.magnitude[0] == pytest.approx(9.0)
    firm = drive(cruise + [(1, 60 - 6 * k) for k in range(1, 8)] + [(300, 18)], JAN, interval=1)  # 6 mph/s
    assert harsh.detect(load(firm)).kind.size == 0


def test_harsh_v2_merges_a_brake_split_by_a_noisy_reading_and_skips_pairs_stretched_by_dropouts() -> None:
    t = drive([(600, 60), (1, 51), (1, 50.5), (1, 42), (300, 40)], JAN, interval=1)  # 9, 0.5, 8.5 mph/s
    assert list(harsh.detect(load(t)).kind) == [0]  # one brake, not two
    full = drive([(600, 60), (1, 51), (300, 40)], JAN, interval=1)
    lost = full.filter(pa.array([i != 600 for i in range(full.num_rows)]))  # the ping at 51 mph never arrived
    # 60 -> 40 over 2 s is a real 10 mph/s on average, but a 2 s pair is not judged at all
    assert harsh.detect(load(lost)).kind.size == 0


def test_harsh_v2_demands_a_margin_over_the_device_s_own_speed_noise() -> None:
    r = np.random.default_rng(1)
    t = drive([(600, 60), (1, 52.8), (300, 52.8)], JAN, interval=1)  # a 7.2 mph/s brake
    quiet = load(t)
    assert harsh.noise_mph(quiet)[0] == harsh.NOISE_FLOOR_MPH and harsh.detect(quiet).kind.size == 1
    noise = r.normal(0, 0.5, t.num_rows)
    noise[598:602] = 0.0  # the brake itself reads true: only the device's record elsewhere differs
    noisy = load(_with_speeds(t, np.round(t["speed_mph"].to_numpy() + noise, 1)))
    assert harsh.noise_mph(noisy)[0] > 0.5  # a 1 s difference of two readings
    assert harsh.detect(noisy).kind.size == 0  # 7.2 is not clearly above 7 on this device


def test_harsh_v2_is_null_with_a_reason_where_pings_are_too_sparse_and_tsp_events_come_first() -> None:
    t = drive([(600, 60), (1, 51), (1, 42), (300, 40)], JAN, interval=5)
    row = run(flow("harsh@3"), t)
    assert row["harsh_brakes"] is None and row["harsh_brake_measurable"] is False
    assert row["harsh_brake_source"] is None and "5 s apart" in row["harsh_brake_reason"]
    assert row["sharp_turns"] == 0 and row["sharp_turn_source"] == "gps"  # turns are measurable at 5 s
    ts = pa.array([int(JAN.timestamp() * 1000) + k * 60_000 for k in range(3)], pa.timestamp("ms", tz="UTC"))
    events = pa.table({"vehicle_id": ["v1", "v1", "v2"], "ts": ts, "kind": ["harsh_brake", "harsh_turn", "harsh_brake"],
                       "source": ["motive"] * 3})
    rows = walk.compute(flow("harsh@3"), FlowInput("f", "2025-01", {"pings": t, "events": events}, True)).to_pylist()
    by = {r["vehicle_id"]: r for r in rows}
    assert (by["v1"]["harsh_brakes"], by["v1"]["sharp_turns"], by["v1"]["harsh_accels"]) == (1, 1, 0)
    assert by["v1"]["harsh_brake_source"] == "tsp:motive" and by["v1"]["harsh_brake_measurable"]
    assert by["v2"]["harsh_brakes"] == 1 and by["v2"]["miles"] == 0  # events of a vehicle with no pings
    assert by[None]["harsh_brakes"] == 2


def test_speed_v2_keeps_an_episode_through_a_noisy_ping_and_ignores_a_high_reading_of_74() -> None:
    t = drive([(600, 60), (50, 76.5), (1, 73.8), (50, 76.5), (600, 60)], JAN, interval=1)
    r = run(flow("speed@3"), t)
    # one episode across the dip (two runs of 50 s, neither a minute, if the dip ended it)
    assert r["speeding_episodes"] == 1 and r["speeding_minutes"] == pytest.approx(101 / 60, abs=0.05)
    r = np.random.default_rng(2)
    near = drive([(600, 60), (300, 74.0), (600, 60)], JAN, interval=1)
    readings = near["speed_mph"].to_numpy() + np.where(near["speed_mph"].to_numpy() > 70, r.uniform(0.0, 1.2, near.num_rows), 0)
    assert run(flow("speed@3"), _with_speeds(near, np.round(readings, 1)))["speeding_episodes"] == 0


def test_distance_and_trips_v2_do_not_count_idle_drift_as_driving() -> None:
    r = np.random.default_rng(3)
    t = drive([(1800, 50), (1800, 0), (1800, 50), (1, 0)], JAN, interval=1)
    speeds = t["speed_mph"].to_numpy().copy()
    idle = speeds == 0
    speeds[idle] = np.round(np.abs(r.normal(0, 0.5, idle.sum())), 1)  # the receiver drifts at rest
    lat = t["lat"].to_numpy() + np.where(idle, r.normal(0, 1e-5, t.num_rows), 0)  # ~1 m of fix jitter
    drifting = _with_speeds(t, speeds).set_column(t.schema.get_field_index("lat"), "lat", pa.array(lat))
    r = run(flow("trips@3"), drifting)
    # the idle half hour is neither driving (a 0 mph rule would count most of it) nor a trip of its own
    assert r["driving_hours"] == pytest.approx(1.0, abs=0.01) and r["trips"] == 2
    miles = sum(r["miles"] for r in walk.compute(flow("distance@2"), FlowInput("f", "2025-01", {"pings": drifting}, True))
                .to_pylist() if r["vehicle_id"])
    assert miles == pytest.approx(50.0, rel=0.002)
