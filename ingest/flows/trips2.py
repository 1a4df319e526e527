"""trips v2: trips v1 on speeds where idle drift is not driving (ingest/flows/motion.py)."""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.motion import moving_track_of
from ingest.flows.track import COLUMNS
from ingest.flows.trips import SCHEMA, compute_track


def compute(inp: FlowInput) -> pa.Table:
    return compute_track(inp, moving_track_of(inp))


FLOW = Flow("trips", 2, ("pings",), SCHEMA, compute, columns=COLUMNS)
