"""distance's rules (v2, docs/features.md): miles robust to GPS fix jitter, split across state lines.

- moving means a reported speed of at least MOVING_MPH (2 mph) at either end (below it a
  receiver's idle drift, not the truck, is moving; ingest/flows/motion.py);
- a pair at most SHORT_PAIR_S long whose faster end is under SLOW_MPH counts the distance its
  speeds integrate to (trapezoid), not its chord: Doppler speed noise averages out where
  position jitter only adds up. Faster or longer pairs keep the chord, which at 5-30 s is what
  stays accurate (speeds at the ends say little about what happened in between).
- a pair longer than SPLIT_MI (a device-offline gap, or sparse pings) splits its miles over
  the states of points every SPLIT_MI along its chord, instead of giving all of them to the
  state of its midpoint: a 20-minute gap near a state line does not move miles across it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from geo.states import state_lookup
from ingest.flows.base import FlowInput
from ingest.flows.distance.schema import SCHEMA
from ingest.flows.motion import moving_track_of
from ingest.flows.track import IMPLAUSIBLE_MPH, Track

SHORT_PAIR_S = 2.5
SLOW_MPH = 20.0
SPLIT_MI = 0.25


def pair_miles(tr: Track) -> tuple[np.ndarray, np.ndarray]:
    """(counted, miles) per consecutive pair under the v2 rules (on a track from load_moving)."""
    p = tr.pairs
    v0, v1, dt = tr.speed[:-1], tr.speed[1:], p.dt_s
    moving = p.same & (np.maximum(v0, v1) > 0)  # speeds under MOVING_MPH are 0 already
    with np.errstate(divide="ignore", invalid="ignore"):
        plausible = np.where(dt > 0, p.miles / (dt / 3600.0), np.inf) <= IMPLAUSIBLE_MPH
    counted = moving & plausible
    slow = counted & (dt <= SHORT_PAIR_S) & (np.maximum(v0, v1) < SLOW_MPH)
    integral = dt * (v0 + v1) / 2 / 3600.0
    return counted, np.where(slow, integral, np.where(counted, p.miles, 0.0))


def state_miles(tr: Track) -> tuple[np.ndarray, np.ndarray]:
    """([vehicle, state] miles, state codes with "--" for outside every state) of a track."""
    counted, miles = pair_miles(tr)
    idx = np.flatnonzero(counted)
    # points per pair along its chord (1 for nearly all): miles are split evenly between them
    pieces = np.maximum(1, np.ceil(tr.pairs.miles[idx] / SPLIT_MI)).astype(np.int64)
    starts = np.cumsum(pieces) - pieces
    frac = (np.arange(int(pieces.sum())) - np.repeat(starts, pieces) + 0.5) / np.repeat(pieces, pieces)
    idx = np.repeat(idx, pieces)
    lookup = state_lookup()
    state = lookup.index_of(tr.lat[idx] + (tr.lat[idx + 1] - tr.lat[idx]) * frac,
                            tr.lon[idx] + (tr.lon[idx + 1] - tr.lon[idx]) * frac)
    codes = np.array([*lookup.codes, "--"], dtype=object)
    nv, ns = len(tr.vehicles), len(codes)
    # bincount adds each bin's weights in row order, so a vehicle's sums do not depend on the others
    sums = np.bincount(tr.vehicle_index[idx].astype(np.int64) * ns + state, weights=miles[idx] / np.repeat(pieces, pieces),
                       minlength=nv * ns).reshape(nv, ns)
    return sums, codes


def _table(inp: FlowInput, vehicles: tuple[str, ...], sums: np.ndarray, codes: np.ndarray,
           fleet: np.ndarray | None) -> pa.Table:
    """Vehicle rows for every (vehicle, state) with miles, then the fleet's rows when given."""
    v_nz, s_nz = np.nonzero(sums > 0)
    f_nz = np.flatnonzero(fleet > 0) if fleet is not None else np.empty(0, np.int64)
    vehicle_ids = [vehicles[v] for v in v_nz] + [None] * f_nz.size
    n = len(vehicle_ids)
    return pa.table({
        "fleet_id": [inp.fleet_id] * n, "month": [inp.month] * n, "vehicle_id": vehicle_ids,
        "state": codes[s_nz].tolist() + codes[f_nz].tolist(),
        "miles": np.concatenate([sums[v_nz, s_nz], fleet[f_nz] if fleet is not None else np.empty(0)]),
        "complete_month": [inp.complete] * n}, schema=SCHEMA)


def vehicle(inp: FlowInput, _ctx: object) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    tr = moving_track_of(inp)
    if tr.n < 2:
        return [], None
    sums, codes = state_miles(tr)
    return _table(inp, tr.vehicles, sums, codes, None).to_pylist(), sums[0]


def fleet(inp: FlowInput, _ctx: object, parts: list[np.ndarray | None]) -> list[dict[str, Any]]:
    rows = [p for p in parts if p is not None]
    if not rows:
        return []
    # summed over axis 0 of the stacked rows, as the whole month's [vehicle, state] array is
    codes = np.array([*state_lookup().codes, "--"], dtype=object)
    fleet_sums = np.stack(rows).sum(axis=0)
    return _table(inp, (), np.zeros((0, codes.size)), codes, fleet_sums).to_pylist()
