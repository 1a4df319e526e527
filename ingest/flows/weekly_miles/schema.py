"""weekly_miles's output contract: one row per fleet and ISO week."""

from __future__ import annotations

import pyarrow as pa

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("week", pa.string()),  # "YYYY-Www", Monday 00:00 to Monday 00:00 UTC
    ("miles", pa.float64()), ("active_vehicles", pa.int64()),  # vehicles with driven miles in the week
    ("complete_week", pa.bool_()),
])
