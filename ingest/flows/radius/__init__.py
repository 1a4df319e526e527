"""radius: garaging location and radius of operation per vehicle-month (docs/features.md).

v2 (active): the rules in rules.py and garaging.py. Retired: v1 (the same rules over the month
held whole; golden files in tests/golden/); its table stays readable under features/radius/v1/.
"""

from __future__ import annotations

from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.radius import rules
from ingest.flows.radius.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("radius", 2, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row), columns=COLUMNS),)
