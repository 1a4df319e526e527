"""distance's output contract: miles per (vehicle, month, US state), then the fleet's per state."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.rollup import key_columns

SCHEMA = pa.schema([
    *key_columns(),
    ("state", pa.string()),  # two-letter code; "--" outside every US state
    ("miles", pa.float64()),
    ("complete_month", pa.bool_()),
])
