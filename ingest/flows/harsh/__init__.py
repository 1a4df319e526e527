"""harsh: harsh braking, acceleration and sharp turns that say where their numbers come from (docs/features.md).

v4 (active, issue 26): v3's contract with braking and acceleration from ingest/signals (fused
speed, outliers rejected, rates per 1000 of distance v3's miles), fused.py. v3 (active until
consumers move): detection in detect.py, the walk in rules.py. Retired: v1 (GPS-only thresholds,
no noise model), v2 (v3's rules over the month held whole, a missing heading's chord measured
from the start of the fleet-month; golden files in tests/golden/); their tables stay readable
under features/harsh/v1/ and v2/.
"""

from __future__ import annotations

from ingest.flows import signals
from ingest.flows.base import Flow, Walk
from ingest.flows.harsh import fused, rules
from ingest.flows.harsh.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("harsh", 3, ("pings", "events"), SCHEMA, Walk(rules.vehicle, rules.fleet, rules.context),
                 columns=COLUMNS),
            Flow("harsh", 4, ("pings", "events"), SCHEMA, Walk(fused.vehicle, fused.fleet, fused.context),
                 columns=signals.COLUMNS))
