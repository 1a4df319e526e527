"""quote_book's output contract: one row per (fleet, figure) of the book's quote window."""

from __future__ import annotations

import pyarrow as pa

SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("month", pa.string()),  # month: the book window's key, e.g. book:q12:2025-11
    ("figure", pa.string()), ("value", pa.float64()),
    ("percentile", pa.float64()),  # 0-100: the share of the compared fleets whose figure is lower
    ("fleets_compared", pa.int64()),  # other fleets with a complete quote window and this figure
    ("reason", pa.string()),  # why the percentile is null
])
