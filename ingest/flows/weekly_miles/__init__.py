"""weekly_miles: miles and active vehicles per fleet and ISO week (window "week", docs/flows.md).

v1: one row per fleet-week: the week's driven miles under distance@2's pair rules, summed over
vehicles, and the vehicles that drove. Not active by default (config/flows.toml): it shows and
tests the week window. Retired versions: none.
"""

from __future__ import annotations

from ingest.flows.base import Flow, Walk
from ingest.flows.track import COLUMNS
from ingest.flows.weekly_miles import rules
from ingest.flows.weekly_miles.schema import SCHEMA

VERSIONS = (
    Flow("weekly_miles", 1, ("pings",), SCHEMA, Walk(rules.vehicle, rules.fleet), columns=COLUMNS, window="week"),
)
