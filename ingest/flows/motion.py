"""What counts as moving when reported speeds are noisy (the v2 flows' shared rule).

v1 calls a ping moving when its speed is above 0. Real receivers let the speed drift above 0
while a truck idles (0.1-1.5 mph from position wander, docs/sandbox.md), which v1 counts as
driving: hours, trips and miles grow while the truck stands. v2 calls a speed under MOVING_MPH
standing still. A truck really creeping that slowly covers a few metres a minute, and the
seconds a start or stop spends under it are a rounding error next to the idle time it removes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from ingest.flows.base import FlowInput
from ingest.flows.track import Track, load, share_speed_free, track_of

MOVING_MPH = 2.0


def still(tr: Track) -> Track:
    """The same track with every speed under MOVING_MPH set to 0."""
    return dataclasses.replace(tr, speed=np.where(tr.speed < MOVING_MPH, 0.0, tr.speed))


def load_moving(table: pa.Table) -> Track:
    return still(load(table))


def moving_track_of(inp: FlowInput) -> Track:
    """load_moving for a month task: once per (fleet, month), sharing distances and time zones
    with the plain track (track.track_of) instead of computing them twice."""
    tr = inp.shared.get("moving_track")
    if tr is None:
        base = track_of(inp)
        tr = inp.shared["moving_track"] = still(base)
        share_speed_free(base, tr)
    assert isinstance(tr, Track)
    return tr
