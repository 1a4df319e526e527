"""speed: how fast a vehicle drives, and for how long above 65, 70 and 75 mph (docs/features.md).

v3 (active): the rules in rules.py and episodes.py. Retired: v1 (episodes as consecutive pings
over 75 mph; any speed above 0 moving), v2 (v3's rules over the month held whole, an exact p95;
golden files in tests/golden/); their tables stay readable under features/speed/v1/ and v2/.
"""

from __future__ import annotations

from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.speed import rules
from ingest.flows.speed.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("speed", 3, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row), columns=COLUMNS),)
