"""distance: miles driven per (vehicle, month, US state), from GPS (docs/features.md).

v3 (active, issue 26): miles from the odometer where it can be trusted, GPS path length
otherwise, state miles split where the line between fixes crosses a state line, and the source
of each vehicle-month (best_source.py on ingest/signals). v2 (active, harsh@3 counts its miles):
the rules in rules.py. Retired: v1 (chords while either end reports any speed,
each pair's miles to the state of its midpoint); its table stays readable under
features/distance/v1/.
"""

from __future__ import annotations

from ingest.flows import signals
from ingest.flows.base import Flow, Walk
from ingest.flows.distance import best_source, rules
from ingest.flows.distance.schema import SCHEMA, SCHEMA_V3
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("distance", 2, ("pings",), SCHEMA, Walk(rules.vehicle, rules.fleet), columns=COLUMNS),
            Flow("distance", 3, ("pings",), SCHEMA_V3, Walk(best_source.vehicle, best_source.fleet),
                 columns=signals.COLUMNS))
