"""A built-in flow version by its name, as config/flows.toml names it ("distance@2")."""

from __future__ import annotations

from ingest.flows.base import Flow
from ingest.flows.registry import builtin


def flow(key: str) -> Flow:
    name, _, version = key.partition("@")
    return builtin()[(name, int(version))]
