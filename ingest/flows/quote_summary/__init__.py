"""quote_summary: what an underwriter quotes on, over the last N complete months (docs/features.md).

v1: the window's miles and where they were driven, radius class, harsh events and speeding per
1,000 mi, night share and active vehicles, each with the months it covers and a reason when null.
Window: the quote window (FLEETLAKE_QUOTE_MONTHS, default 12), read from the month features.
"""

from __future__ import annotations

from ingest.flows.base import Flow, table_walk
from ingest.flows.quote_summary import rules
from ingest.flows.quote_summary.schema import SCHEMA

INPUTS = ("distance@2", "speed@3", "harsh@3", "radius@2", "trips@3", "fatigue@3")

VERSIONS = (Flow("quote_summary", 1, INPUTS, SCHEMA, table_walk(rules.summary), window="quote"),)
