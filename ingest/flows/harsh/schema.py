"""harsh's output contract: per kind, counts, rates per 1,000 mi, their source, whether measurable and why not."""

from __future__ import annotations

import pyarrow as pa

KINDS = ("harsh_brake", "harsh_accel", "sharp_turn")

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),
    ("vehicle_id", pa.string()),  # null: the fleet roll-up
    ("miles", pa.float64()),
    *[f for k in KINDS for f in (
        pa.field(f"{k}s", pa.int64()), pa.field(f"{k}s_per_1000_mi", pa.float64()),
        pa.field(f"{k}_source", pa.string()),  # "tsp:<tsp>" | "gps"; null when not measurable
        pa.field(f"{k}_measurable", pa.bool_()),
        pa.field(f"{k}_reason", pa.string()))],  # why not measurable (or, fleet row, who is left out)
    ("complete_month", pa.bool_()),
])
