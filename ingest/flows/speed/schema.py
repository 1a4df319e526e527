"""speed's output contract: how fast a vehicle drives, and for how long above 65, 70 and 75 mph."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

LIMITS_MPH = (65, 70, 75)

SCHEMA = pa.schema([
    *key_columns(),
    ("moving_hours", pa.float64()), ("mean_moving_mph", pa.float64()), ("p95_mph", pa.float64()),
    ("max_mph", pa.float64()),
    *[(f"hours_over_{x}", pa.float64()) for x in LIMITS_MPH],
    ("speeding_episodes", pa.int64()), ("speeding_minutes", pa.float64()),
    ("complete_month", pa.bool_()),
])
