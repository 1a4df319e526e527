"""A vehicle's signal series and fused speed, computed once per vehicle for every flow that uses them.

The walk hands every flow of one vehicle the same `inp.shared` (ingest/flows/walk.py); the
series is keyed by the columns the flow reads, since flows read different ones (only some read
the odometer), and the fused speed and the miles by the same key. The flows on signals read
the same columns (COLUMNS), so they share all three.
"""

from __future__ import annotations

from ingest.flows.base import FlowInput
from ingest.flows.track import COLUMNS as TRACK_COLUMNS

COLUMNS = (*TRACK_COLUMNS, "odometer_mi")  # what the flows on signals read
from ingest.signals.distance import VehicleMiles, vehicle_miles
from ingest.signals.series import VehicleSeries, vehicle_series
from ingest.signals.speed import FusedSpeed, fused_speed


def series_of(inp: FlowInput) -> VehicleSeries:
    table = inp.tables["pings"]
    key = "signals.series:" + ",".join(table.column_names)
    s = inp.shared.get(key)
    if s is None:
        s = inp.shared[key] = vehicle_series(table)
    assert isinstance(s, VehicleSeries)
    return s


def fused_of(inp: FlowInput) -> FusedSpeed:
    key = "signals.fused:" + ",".join(inp.tables["pings"].column_names)
    f = inp.shared.get(key)
    if f is None:
        f = inp.shared[key] = fused_speed(series_of(inp))
    assert isinstance(f, FusedSpeed)
    return f


def miles_of(inp: FlowInput) -> VehicleMiles:
    key = "signals.miles:" + ",".join(inp.tables["pings"].column_names)
    m = inp.shared.get(key)
    if m is None:
        m = inp.shared[key] = vehicle_miles(series_of(inp), fused_of(inp))
    assert isinstance(m, VehicleMiles)
    return m
