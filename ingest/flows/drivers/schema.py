"""drivers' output contract: one row per driver of a fleet-month, and one for unassigned driving."""

from __future__ import annotations

import pyarrow as pa

VIOLATIONS = ("driving_11", "duty_14", "break_30", "cycle_60", "cycle_70", "other")

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),
    ("driver_id", pa.string()),  # null: driving no assignment covers (the unassigned bucket)
    ("miles", pa.float64()), ("driving_hours", pa.float64()),
    ("share_of_fleet_driving", pa.float64()),  # of the fleet-month's driving hours; null when it drove none
    ("night_share", pa.float64()),
    ("harsh_events", pa.int64()), ("harsh_per_1000mi", pa.float64()), ("harsh_reason", pa.string()),
    ("speeding_episodes", pa.int64()), ("speeding_per_1000mi", pa.float64()), ("speeding_reason", pa.string()),
    *[(f"violations_{k}", pa.int64()) for k in VIOLATIONS],  # null on the unassigned row: no driver, no log
    ("complete_month", pa.bool_()),
])
