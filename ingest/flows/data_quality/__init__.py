"""data_quality: how much a vehicle-month of pings can be trusted (docs/features.md).

v1: pings, median intervals (all pairs and moving pairs), gaps over 10 minutes while moving and
their hours, implausible jumps, first and last ping. Retired versions: none.
"""

from __future__ import annotations

from ingest.flows import walk
from ingest.flows.base import Flow
from ingest.flows.data_quality import rules
from ingest.flows.data_quality.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (
    Flow("data_quality", 1, ("pings",), SCHEMA, walk.parts_walk(rules.part, rules.merge, rules.row), columns=COLUMNS),
)
