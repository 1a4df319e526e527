"""Offline geography shared by the sandbox's ground truth and the feature flows.

A leaf package: it imports nothing else of fleetlake, so `connectors` and `ingest` can both use it
without breaking the one-way data flow of DESIGN.md.
"""

from __future__ import annotations

from geo.distance import EARTH_RADIUS_M, METERS_PER_MILE, haversine_m
from geo.states import StateLookup, state_lookup

__all__ = ["EARTH_RADIUS_M", "METERS_PER_MILE", "StateLookup", "haversine_m", "state_lookup"]
