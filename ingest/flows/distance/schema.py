"""distance's output contract: miles per (vehicle, month, US state), then the fleet's per state."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("state", pa.string()),  # two-letter code; "--" outside every US state
    ("miles", pa.float64()),
    ("complete_month", pa.bool_()),
])


# v3: the same rows, and where the miles came from. `source` is "odometer", "gps" or
# "odometer+gps" (a vehicle-month whose odometer was trusted on some stretches only; the fleet
# row: the sources its vehicles used); `odometer_share` is the share of the miles counted from
# trusted odometer stretches (null without miles).
SCHEMA_V3 = pa.schema([
    *key_columns(),
    ("state", pa.string()),
    ("miles", pa.float64()),
    ("source", pa.string()),
    ("odometer_share", pa.float64()),
    ("complete_month", pa.bool_()),
])
