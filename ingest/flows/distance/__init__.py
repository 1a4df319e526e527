"""distance: miles driven per (vehicle, month, US state), from GPS (docs/features.md).

v2 (active): the rules in rules.py. Retired: v1 (chords while either end reports any speed,
each pair's miles to the state of its midpoint); its table stays readable under
features/distance/v1/.
"""

from __future__ import annotations

from ingest.flows.base import Flow, Walk
from ingest.flows.distance import rules
from ingest.flows.distance.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("distance", 2, ("pings",), SCHEMA, Walk(rules.vehicle, rules.fleet), columns=COLUMNS),)
