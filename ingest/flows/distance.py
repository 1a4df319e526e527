"""distance v1: miles driven per (vehicle, month, US state), from GPS (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.distance import METERS_PER_MILE, haversine_m
from geo.states import state_lookup
from ingest.flows.base import Flow, FlowInput

IMPLAUSIBLE_MPH = 150.0  # a pair implying more than this is a GPS jump: its distance is dropped

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()), ("vehicle_id", pa.string()),
    ("state", pa.string()),  # two-letter code; "--" outside every US state
    ("miles", pa.float64()),
    ("complete_month", pa.bool_()),
])


def step_miles(vid: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, speed: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(valid, miles) for each consecutive pair of pings (length n - 1).

    A pair counts when it is one vehicle's, the vehicle was moving at either end (so a parked
    truck's GPS drift adds nothing) and the implied speed is plausible. A gap while moving
    (the device was offline) counts its straight-line distance: the truck kept driving.
    """
    same = vid[1:] == vid[:-1]
    dt = np.diff(ts) / 1000.0
    moving = (speed[:-1] > 0) | (speed[1:] > 0)
    miles = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]) / METERS_PER_MILE
    with np.errstate(divide="ignore", invalid="ignore"):
        plausible = np.where(dt > 0, miles / (dt / 3600.0), np.inf) <= IMPLAUSIBLE_MPH
    return same & moving & plausible, miles


def compute(inp: FlowInput) -> pa.Table:
    p = inp.tables["pings"]
    if p.num_rows < 2:
        return SCHEMA.empty_table()
    vid = pc.cast(p["vehicle_id"], pa.string()).to_numpy(zero_copy_only=False)
    ts = pc.cast(p["ts"], pa.int64()).to_numpy()
    lat, lon = p["lat"].to_numpy(), p["lon"].to_numpy()
    speed = pc.fill_null(p["speed_mph"], 0.0).to_numpy()
    ok, miles = step_miles(vid, ts, lat, lon, speed)
    idx = np.flatnonzero(ok)
    lookup = state_lookup()
    state = lookup.index_of((lat[idx] + lat[idx + 1]) / 2, (lon[idx] + lon[idx + 1]) / 2)
    codes = np.array([*lookup.codes, "--"], dtype=object)
    vehicles, v_idx = np.unique(vid[idx], return_inverse=True)
    key = v_idx.astype(np.int64) * (len(codes)) + state
    sums = np.bincount(key, weights=miles[idx], minlength=len(vehicles) * len(codes))
    nz = np.flatnonzero(sums > 0)
    return pa.table({
        "fleet_id": [inp.fleet_id] * nz.size, "month": [inp.month] * nz.size,
        "vehicle_id": vehicles[nz // len(codes)].astype(str).tolist(), "state": codes[nz % len(codes)].tolist(),
        "miles": sums[nz], "complete_month": [inp.complete] * nz.size}, schema=SCHEMA)


FLOW = Flow("distance", 1, ("pings",), SCHEMA, compute)
