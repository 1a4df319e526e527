"""radius's output contract: garaging location and radius of operation per vehicle-month, then the fleet's."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("garaging_lat", pa.float64()), ("garaging_lon", pa.float64()), ("garaging_nights", pa.int64()),
    ("nights_observed", pa.int64()), ("active_days", pa.int64()),
    ("max_daily_radius_mi", pa.float64()), ("p90_daily_radius_mi", pa.float64()),
    ("share_miles_beyond_50", pa.float64()), ("share_miles_beyond_200", pa.float64()),
    ("radius_class", pa.string()),  # local | intermediate | long_haul; null when garaging is unknown
    ("complete_month", pa.bool_()),
])
