"""drivers: per driver of a fleet-month, miles, driving hours, night share, harsh-event and
speeding rates, HOS violations by rule, and the share of the fleet's driving; unassigned driving is
a row of its own (driver_id null). Rules: rules.py; who drove when: attribution.py."""

from __future__ import annotations

from ingest.flows.base import Flow, Walk
from ingest.flows.drivers import rules
from ingest.flows.drivers.schema import SCHEMA
from ingest.flows.track import COLUMNS

VERSIONS = (Flow("drivers", 1, ("pings", "events", "assignments", "hos_logs", "hos_violations"), SCHEMA,
                 Walk(rules.vehicle, rules.fleet, rules.context), columns=COLUMNS),)
