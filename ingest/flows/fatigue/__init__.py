"""fatigue: night driving and hours-of-service patterns per vehicle-month (docs/features.md).

v3 (active): the rules in rules.py. Retired: v1 (any speed above 0 moving), v2 (v3's rules over
the month held whole; golden files in tests/golden/); their tables stay readable under
features/fatigue/v1/ and v2/.
"""

from __future__ import annotations

from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.fatigue import rules
from ingest.flows.fatigue.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("fatigue", 3, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row), columns=COLUMNS),)
