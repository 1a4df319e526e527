"""trips: driving hours, active days and trips per vehicle-month (docs/features.md).

v3 (active): the rules in rules.py. Retired: v1 (any speed above 0 is moving), v2 (v1's rules
on speeds under 2 mph as standing, over the month held whole; v3 has its numbers, golden files
in tests/golden/); their tables stay readable under features/trips/v1/ and v2/.
"""

from __future__ import annotations

from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.track import COLUMNS
from ingest.flows.trips import rules
from ingest.flows.trips.schema import SCHEMA

VERSIONS = (Flow("trips", 3, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row), columns=COLUMNS),)
