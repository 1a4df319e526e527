"""trips v1: driving hours, active days and trips per vehicle-month (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns, select, vehicle_and_fleet_rows
from ingest.flows.track import COLUMNS, Track, quantile, track_of

STOP_S = 300  # a stop of 5 min or more ends a trip (a gap over 10 min does too: track.GAP_S)
MIN_TRIP_MILES = 0.1  # a speed blip in a yard is not a trip

SCHEMA = pa.schema([
    *key_columns(),
    ("driving_hours", pa.float64()), ("active_days", pa.int64()), ("trips", pa.int64()),
    ("trip_minutes_mean", pa.float64()), ("trip_minutes_p90", pa.float64()),
    ("trip_miles_mean", pa.float64()), ("trip_miles_p90", pa.float64()),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    return compute_track(inp, track_of(inp))


def compute_track(inp: FlowInput, tr: Track) -> pa.Table:
    """The feature table from an already loaded track (v2 hands in one with idle drift removed)."""
    if tr.n == 0:
        return SCHEMA.empty_table()
    p = tr.pairs
    pair_owner = tr.pair_vehicle
    seg = tr.segments(STOP_S)
    real = seg.miles >= MIN_TRIP_MILES
    minutes, miles, owner = seg.duration_s[real] / 60.0, seg.miles[real], seg.vehicle[real]
    driving = p.driving_s > 0
    # A day is a local calendar day (time zone of the truck's position) with any driving.
    day_owner = pair_owner[driving]
    day_key = tr.local_day[:-1][driving]

    def summarise(v: int | None) -> dict[str, object]:
        s = select(owner, v)
        d = select(day_owner, v)
        n = minutes[s].size
        return {"driving_hours": float(p.driving_s[select(pair_owner, v)].sum() / 3600.0),  # 0 across vehicles
                "active_days": int(np.unique(day_key[d] if v is not None else
                                             day_key[d] * 100_000 + day_owner[d]).size),
                "trips": n,
                "trip_minutes_mean": float(minutes[s].mean()) if n else None,
                "trip_minutes_p90": quantile(minutes[s], 0.9),
                "trip_miles_mean": float(miles[s].mean()) if n else None,
                "trip_miles_p90": quantile(miles[s], 0.9)}

    return vehicle_and_fleet_rows(inp, tr.vehicles, SCHEMA, summarise)


FLOW = Flow("trips", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
