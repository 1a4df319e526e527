"""quote_summary's output contract: one row per fleet and quote window (the last N complete months).

Each figure comes with how many of the window's months it covers and, when it is null, why.
"""

from __future__ import annotations

import pyarrow as pa

FIGURES = ("miles", "radius_class", "harsh_per_1000_mi", "speeding_per_1000_mi", "night_share", "active_vehicles")

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),  # month: the window's key, e.g. q12:2025-11
    ("first_month", pa.string()), ("last_month", pa.string()), ("window_months", pa.int64()),
    ("complete_window", pa.bool_()),  # every month of the window has miles
    ("miles", pa.float64()), ("miles_months", pa.int64()), ("miles_reason", pa.string()),
    ("state_shares", pa.list_(pa.struct([("state", pa.string()), ("share", pa.float64())]))),  # by miles, largest first
    ("radius_class", pa.string()), ("radius_months", pa.int64()), ("radius_reason", pa.string()),
    ("harsh_per_1000_mi", pa.float64()), ("harsh_months", pa.int64()), ("harsh_reason", pa.string()),
    ("speeding_per_1000_mi", pa.float64()), ("speeding_months", pa.int64()), ("speeding_reason", pa.string()),
    ("night_share", pa.float64()), ("night_months", pa.int64()), ("night_reason", pa.string()),
    ("active_vehicles", pa.int64()), ("active_vehicles_months", pa.int64()), ("active_vehicles_reason", pa.string()),
])
