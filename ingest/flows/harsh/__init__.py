"""harsh: harsh braking, acceleration and sharp turns that say where their numbers come from (docs/features.md).

v3 (active): detection in detect.py, the walk in rules.py. Retired: v1 (GPS-only thresholds,
no noise model), v2 (v3's rules over the month held whole, a missing heading's chord measured
from the start of the fleet-month; golden files in tests/golden/); their tables stay readable
under features/harsh/v1/ and v2/.
"""

from __future__ import annotations

from ingest.flows.base import Flow, Walk
from ingest.flows.harsh import rules
from ingest.flows.harsh.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("harsh", 3, ("pings", "events"), SCHEMA, Walk(rules.vehicle, rules.fleet, rules.context),
                 columns=COLUMNS),)
