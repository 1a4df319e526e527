"""Per-vehicle rows plus one fleet roll-up row (vehicle_id null), built the same way.

Flows describe how to summarise a group of items (pairs, trips, days, events) once; the fleet
row is that same summary over every vehicle's items, so a fleet p90 is the p90 of all trips,
not an average of vehicle p90s.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pyarrow as pa

from ingest.flows.base import FlowInput


def vehicle_and_fleet_rows(inp: FlowInput, vehicles: tuple[str, ...], schema: pa.Schema,
                           summarise: Callable[[int | None], Mapping[str, object]]) -> pa.Table:
    """`summarise(v)` gets a vehicle index, or None for the whole fleet, and returns the feature columns."""
    rows = []
    for v, vid in [*enumerate(vehicles), (None, None)]:
        rows.append({"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": vid, **summarise(v),
                     "complete_month": inp.complete})
    return pa.Table.from_pylist(rows, schema)


def select(owner: np.ndarray, v: int | None) -> slice:
    """The items of vehicle v (all items for the fleet row), as a slice.

    `owner` must be sorted, which holds for everything derived in row order from committed
    pings (sorted by vehicle): a slice costs nothing, where a mask per vehicle would cost a
    pass over every item for every vehicle.
    """
    if v is None:
        return slice(None)
    # Keys of the array's own dtype: mixed int widths would make numpy copy `owner` on every call.
    lo, hi = np.searchsorted(owner, np.array([v, v + 1], dtype=owner.dtype))
    return slice(int(lo), int(hi))


def key_columns() -> list[tuple[str, pa.DataType]]:
    return [("fleet_id", pa.string()), ("month", pa.string()),
            ("vehicle_id", pa.string())]  # null: the fleet roll-up
