"""quote_book: where each fleet stands among the book, figure by figure (docs/features.md).

v1: for each quote_summary figure with a number, the fleet's percentile among the other fleets
with a complete quote window: the share of them whose figure is lower ("harsher than 80% of our
fleets"). One small window over the book (every fleet's current quote summary), rerun when any
fleet's summary changes; its rows are one per (fleet, figure).
"""

from __future__ import annotations

from ingest.flows.base import Flow, table_walk
from ingest.flows.quote_book import rules
from ingest.flows.quote_book.schema import SCHEMA

VERSIONS = (Flow("quote_book", 1, ("quote_summary@1",), SCHEMA, table_walk(rules.percentiles), window="book"),)
