"""Plug-in flows that go wrong in each way a plug-in can: raise, return the wrong rows, never return."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from ingest.flows.base import Flow, FlowInput, Walk

SCHEMA = pa.schema([("fleet_id", pa.string()), ("month", pa.string()), ("pings", pa.int64())])


def _count(inp: FlowInput, _ctx: object) -> tuple[list[dict[str, Any]], int]:
    return [], inp.tables["pings"].num_rows


def _raises(inp: FlowInput, _ctx: object, parts: list[int]) -> list[dict[str, Any]]:
    raise ZeroDivisionError("the plug-in's own bug")


def _wrong_rows(inp: FlowInput, _ctx: object, parts: list[int]) -> list[dict[str, Any]]:
    return [{"fleet_id": inp.fleet_id, "month": inp.month, "pings": "many"}]  # a string for an int64


def _hangs(inp: FlowInput, _ctx: object) -> tuple[list[dict[str, Any]], int]:
    time.sleep(3600)
    return [], 0


def _fine(inp: FlowInput, _ctx: object, parts: list[int]) -> list[dict[str, Any]]:
    return [{"fleet_id": inp.fleet_id, "month": inp.month, "pings": sum(parts)}]


VERSIONS = (
    Flow("raises", 1, ("pings",), SCHEMA, Walk(_count, _raises)),
    Flow("wrong_rows", 1, ("pings",), SCHEMA, Walk(_count, _wrong_rows)),
    Flow("hangs", 1, ("pings",), SCHEMA, Walk(_hangs, _fine)),
)
