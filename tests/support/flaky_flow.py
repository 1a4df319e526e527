"""A flow that fails on one window: the executor must record it and carry on."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ingest.flows.base import Flow, FlowInput, Walk

SCHEMA = pa.schema([("fleet_id", pa.string()), ("month", pa.string()), ("rows", pa.int64())])


def vehicle(inp: FlowInput, _ctx: object) -> tuple[list[dict[str, Any]], int]:
    return [], inp.tables["pings"].num_rows


def fleet(inp: FlowInput, _ctx: object, parts: list[int]) -> list[dict[str, Any]]:
    if (inp.fleet_id, inp.month) == ("fleet-a", "2025-02"):
        raise ValueError("cannot compute this window")
    return [{"fleet_id": inp.fleet_id, "month": inp.month, "rows": sum(parts)}]


FLOW = Flow("flaky", 1, ("pings",), SCHEMA, Walk(vehicle, fleet))
VERSIONS = (FLOW,)
