"""data_quality v1: how much a vehicle-month of pings can be trusted (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.distance import METERS_PER_MILE, haversine_m
from ingest.flows.base import Flow, FlowInput

GAP_S = 600  # a silence longer than this while the vehicle was moving is a gap (matches trip splitting)
IMPLAUSIBLE_MPH = 150.0  # faster than any truck: a GPS jump, not driving

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()), ("vehicle_id", pa.string()),
    ("pings", pa.int64()), ("median_interval_s", pa.float64()), ("moving_median_interval_s", pa.float64()),
    ("gap_hours", pa.float64()), ("gaps", pa.int64()), ("implausible_jumps", pa.int64()),
    ("first_ts", pa.timestamp("ms", tz="UTC")), ("last_ts", pa.timestamp("ms", tz="UTC")),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    pings = inp.tables["pings"]
    rows = []
    vid = pc.cast(pings["vehicle_id"], pa.string()).to_numpy(zero_copy_only=False)
    ts = pc.cast(pings["ts"], pa.int64()).to_numpy()
    lat, lon = pings["lat"].to_numpy(), pings["lon"].to_numpy()
    speed = pc.fill_null(pings["speed_mph"], 0.0).to_numpy()
    # Rows are committed sorted by (vehicle_id, ts): each vehicle is one contiguous run.
    starts = np.flatnonzero(np.concatenate([[True], vid[1:] != vid[:-1]])) if len(vid) else np.array([], int)
    ends = np.concatenate([starts[1:], [len(vid)]])
    for a, b in zip(starts, ends):
        dt = np.diff(ts[a:b]) / 1000.0
        moving = (speed[a:b - 1] > 0) | (speed[a + 1:b] > 0)
        dist = haversine_m(lat[a:b - 1], lon[a:b - 1], lat[a + 1:b], lon[a + 1:b])
        with np.errstate(divide="ignore", invalid="ignore"):
            mph = np.where(dt > 0, dist / METERS_PER_MILE / (dt / 3600.0), 0.0)
        gaps = moving & (dt > GAP_S)
        rows.append({"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": str(vid[a]), "pings": int(b - a),
                     "median_interval_s": float(np.median(dt)) if dt.size else None,
                     "moving_median_interval_s": float(np.median(dt[moving])) if moving.any() else None,
                     "gap_hours": float(dt[gaps].sum() / 3600.0), "gaps": int(gaps.sum()),
                     "implausible_jumps": int((mph > IMPLAUSIBLE_MPH).sum()),
                     "first_ts": int(ts[a]), "last_ts": int(ts[b - 1]), "complete_month": inp.complete})
    return pa.Table.from_pylist(rows, SCHEMA)


FLOW = Flow("data_quality", 1, ("pings",), SCHEMA, compute)
