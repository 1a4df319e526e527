"""A flow that fails on one window: the executor must record it and carry on."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.base import Flow, FlowInput

SCHEMA = pa.schema([("fleet_id", pa.string()), ("month", pa.string()), ("rows", pa.int64())])


def compute(inp: FlowInput) -> pa.Table:
    if (inp.fleet_id, inp.month) == ("fleet-a", "2025-02"):
        raise ValueError("cannot compute this window")
    return pa.table({"fleet_id": [inp.fleet_id], "month": [inp.month], "rows": [inp.tables["pings"].num_rows]})


FLOW = Flow("flaky", 1, ("pings",), SCHEMA, compute)
