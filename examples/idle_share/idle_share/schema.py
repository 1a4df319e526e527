"""idle_share's output contract."""

from __future__ import annotations

import pyarrow as pa

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()), ("vehicle_id", pa.string()),  # vehicle_id null: the fleet
    ("idle_hours", pa.float64()), ("driving_hours", pa.float64()),
    ("idle_share", pa.float64()), ("idle_share_reason", pa.string()),
    ("complete_month", pa.bool_()),
])
