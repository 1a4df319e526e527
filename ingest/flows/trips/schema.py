"""trips' output contract: driving hours, active days and trips per vehicle-month, then the fleet's."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("driving_hours", pa.float64()), ("active_days", pa.int64()), ("trips", pa.int64()),
    ("trip_minutes_mean", pa.float64()), ("trip_minutes_p90", pa.float64()),
    ("trip_miles_mean", pa.float64()), ("trip_miles_p90", pa.float64()),
    ("complete_month", pa.bool_()),
])
