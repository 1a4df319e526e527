"""Speeding episodes whose gap rules scale with the sampling interval (ingest/signals/episodes.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingest.flows.motion import still
from ingest.flows.speed.episodes import episodes as speed_episodes
from ingest.flows.track import load
from ingest.signals import episodes
from ingest.signals.series import VehicleSeries, from_arrays
from sandbox.messy import messy_spec
from sandbox.simulator import FleetSimulator, month_bounds_ms

T0 = 1_741_000_000_000


def _drive(speeds: list[float], every_s: int, drop: tuple[int, ...] = (), seed: int = 5,
           wild: dict[int, float] | None = None) -> VehicleSeries:
    """Pings every `every_s` at the given true speeds on a straight road, minus the `drop`ped ones;
    Doppler noise of 0.5 mph, and `wild` readings the positions do not follow."""
    r = np.random.default_rng(seed)
    sp = np.asarray(speeds, float)
    east = np.concatenate([[0.0], np.cumsum((sp[:-1] + sp[1:]) / 2 * 0.44704 * every_s)])
    keep = np.setdiff1d(np.arange(sp.size), drop)
    reported = np.round(sp + r.normal(0, 0.5, sp.size), 1)
    for i, v in (wild or {}).items():
        reported[i] = v
    lat = np.full(sp.size, 36.0) + r.normal(0, 2.0, sp.size) / 111_195
    lon = -97.0 + (east + r.normal(0, 2.0, sp.size)) / (111_195 * np.cos(np.radians(36.0)))
    return from_arrays("v", T0 + keep * every_s * 1000, lat[keep], lon[keep], reported[keep])


def _old_count(s: VehicleSeries) -> int:
    tr = load(pa.table({"vehicle_id": ["v"] * s.n, "ts": pa.array(s.ts_ms, pa.timestamp("ms")), "lat": s.lat,
                        "lon": s.lon, "speed_mph": s.speed_mph, "heading_deg": s.heading_deg}))
    return len(speed_episodes(still(tr))[0])


def _episode_at_60s() -> list[float]:
    return [62.0] * 10 + [79.0] * 6 + [62.0] * 10  # six minutes over 75


def test_one_lost_ping_at_60s_does_not_split_an_episode():
    s = _drive(_episode_at_60s(), 60, drop=(13,))
    assert _old_count(s) == 2  # the fixed 60 s rule cut it in two, both long enough to count
    found = episodes.speeding(s)
    assert found.first_ms.size == 1
    assert 5 * 60 <= found.seconds[0] <= 7 * 60


def test_two_episodes_apart_stay_two_at_60s():
    speeds = _episode_at_60s() + [79.0] * 4 + [62.0] * 6
    assert episodes.speeding(_drive(speeds, 60)).first_ms.size == 2


def test_a_wild_reading_on_a_sparse_track_is_not_an_episode():
    # one reading of 81 mph while the positions say 62: a Doppler outlier, not a minute of speeding
    s = _drive([62.0] * 30, 60, wild={15: 81.0})
    assert _old_count(s) == 1
    assert episodes.speeding(s).first_ms.size == 0


def test_a_short_real_episode_seen_by_one_ping_at_60s_still_counts():
    # 70 s over 75 is one ping at 60 s; positions agree with it (the truck did drive faster)
    speeds = [62.0] * 10 + [70.0, 79.0, 70.0] + [62.0] * 10
    assert episodes.speeding(_drive(speeds, 60)).first_ms.size == 1


def test_messy_fleet_counts_within_3_percent_of_truth_at_60s_and_event_based():
    for case in ("60", "event"):
        sim = FleetSimulator(messy_spec(case, 8, 31))
        lo, hi = month_bounds_ms("2025-03")
        true_n = found = 0
        for v in sim.vehicles:
            true_n += sum(e.kind == "speeding" for e in sim.events(v, lo, hi))
            c = sim.pings(v, lo, hi)
            found += episodes.speeding(from_arrays(v.vehicle_id, c.ts_ms, c.lat, c.lon, c.speed_mph)).first_ms.size
        assert true_n >= 40
        assert abs(found / true_n - 1) <= 0.03, (case, found, true_n)
