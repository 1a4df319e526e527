"""fatigue's output contract: night driving and hours-of-service patterns per vehicle-month, then the fleet's."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("driving_hours", pa.float64()), ("night_driving_hours", pa.float64()), ("night_share", pa.float64()),
    ("duty_periods", pa.int64()), ("duty_periods_over_11h", pa.int64()), ("max_duty_driving_hours", pa.float64()),
    ("stretches_over_8h", pa.int64()), ("max_stretch_hours", pa.float64()),
    ("complete_month", pa.bool_()),
])
