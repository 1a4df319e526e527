"""idle_share: the share of engine-on time a truck spends standing with its device reporting.

v1: per vehicle-month and for the fleet, hours idling (consecutive pings at most IDLE_GAP_S apart,
both standing) and hours driving (the shared driving time), and idle / (idle + driving); null with
a reason when the vehicle never reported while on.
"""

from __future__ import annotations

from idle_share import rules
from idle_share.schema import SCHEMA
from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("idle_share", 1, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row),
                 columns=COLUMNS),)
