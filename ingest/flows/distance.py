"""distance v1: miles driven per (vehicle, month, US state), from GPS (docs/features.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geo.states import state_lookup
from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns
from ingest.flows.track import COLUMNS, track_of

SCHEMA = pa.schema([
    *key_columns(),
    ("state", pa.string()),  # two-letter code; "--" outside every US state
    ("miles", pa.float64()),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    tr = track_of(inp)
    if tr.n < 2:
        return SCHEMA.empty_table()
    p = tr.pairs
    idx = np.flatnonzero(p.counted)
    lookup = state_lookup()
    # Each pair's miles go to the state of its midpoint.
    state = lookup.index_of((tr.lat[idx] + tr.lat[idx + 1]) / 2, (tr.lon[idx] + tr.lon[idx + 1]) / 2)
    codes = np.array([*lookup.codes, "--"], dtype=object)
    nv, ns = len(tr.vehicles), len(codes)
    sums = np.bincount(tr.vehicle_index[idx].astype(np.int64) * ns + state, weights=p.miles[idx],
                       minlength=nv * ns).reshape(nv, ns)
    v_nz, s_nz = np.nonzero(sums > 0)
    fleet = sums.sum(axis=0)
    f_nz = np.flatnonzero(fleet > 0)
    vehicle_ids = [tr.vehicles[v] for v in v_nz] + [None] * f_nz.size
    n = len(vehicle_ids)
    return pa.table({
        "fleet_id": [inp.fleet_id] * n, "month": [inp.month] * n, "vehicle_id": vehicle_ids,
        "state": codes[s_nz].tolist() + codes[f_nz].tolist(),
        "miles": np.concatenate([sums[v_nz, s_nz], fleet[f_nz]]),
        "complete_month": [inp.complete] * n}, schema=SCHEMA)


FLOW = Flow("distance", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
