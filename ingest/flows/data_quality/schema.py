"""data_quality's output contract: one row per vehicle-month and the fleet's (vehicle_id null)."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("pings", pa.int64()), ("median_interval_s", pa.float64()), ("moving_median_interval_s", pa.float64()),
    ("gap_hours", pa.float64()), ("gaps", pa.int64()), ("implausible_jumps", pa.int64()),
    ("first_ts", pa.timestamp("ms", tz="UTC")), ("last_ts", pa.timestamp("ms", tz="UTC")),
    ("complete_month", pa.bool_()),
])
