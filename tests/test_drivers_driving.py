"""drivers@1's driving-time rule (ingest/flows/drivers/driving.py) on a hand-made track.

A truck pulls away over a ramp under 2 mph, drives a minute, stops over a ramp and idles with its
receiver's speed drifting at 0.5 mph for 5 min. The ramps count (the fleet flows' 2 mph rule drops
them); the drift counts only for RAMP_S after the last 2 mph ping, and never across vehicles.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest.flows.drivers.driving import RAMP_S, driving_s, ramp_speeds
from ingest.flows.motion import still
from ingest.flows.track import Track


def truck(*speeds: list[float]) -> Track:
    sp = np.concatenate([np.asarray(s, float) for s in speeds])
    n = sp.size
    return Track(("a",), np.array([0], np.int64), np.arange(n, dtype=np.int64) * 1000,
                 np.full(n, 40.0), np.full(n, -90.0), sp, np.full(n, np.nan))


def test_ramps_count_and_idle_drift_stops_after_ramp_s() -> None:
    tr = truck([0.0] * 10, [0.4, 1.0, 1.7], [30.0] * 60, [1.5, 0.8, 0.3], [0.5] * 300)
    moving = ramp_speeds(tr) > 0
    last_fast = 72  # the last 30 mph ping
    assert moving[10:13].all() and moving[73:76].all(), "the ramps move"
    assert moving[76:last_fast + int(RAMP_S) + 1].all() and not moving[last_fast + int(RAMP_S) + 1:].any()
    # pairs 10 -> 102 whole (92 s) and the two pairs into and out of the moving run, half a 1 s interval
    assert driving_s(tr, 1.0).sum() == pytest.approx(92 + 0.5 + 0.5)
    # the fleet flows' rule: only pings 13..72 move (59 s and the two half intervals)
    assert still(tr).pairs.driving_s.sum() == pytest.approx(60.0)


def test_a_gap_with_one_end_stopped_counts_the_distance_at_the_mean_speed() -> None:
    # 30 mph, then the device is offline 20 min and comes back parked 3 miles on
    tr = truck([30.0, 30.0], [0.0])
    tr = Track(tr.vehicles, tr.starts, np.array([0, 1000, 1_201_000], np.int64), np.array([40.0, 40.0, 40.0 + 3 / 69.05]),
               tr.lon, tr.speed, tr.heading)
    got = driving_s(tr, 1.0)
    assert got[0] == pytest.approx(1.0)
    assert got[1] == pytest.approx(3 / 15 * 3600, rel=0.01), "3 miles at the mean of 30 and 0 mph, under the gap"


def test_no_ramp_across_vehicles() -> None:
    sp = np.array([30.0, 30.0, 0.5, 0.5])
    tr = Track(("a", "b"), np.array([0, 2], np.int64), np.array([0, 1000, 2000, 3000], np.int64),
               np.full(4, 40.0), np.full(4, -90.0), sp, np.full(4, np.nan))
    assert ramp_speeds(tr).tolist() == [30.0, 30.0, 0.0, 0.0]
    assert driving_s(tr, 1.0).tolist() == [1.0, 0.0, 0.0]
