"""harsh's walk: each vehicle's detection is its own (noise, cadence and events per vehicle).

A heading missing from the device is taken from the chord to the first fix CHORD_M along the
vehicle-month's track. Which TSP the fleet-month's events come from is decided once for the
month, before the walk (`context`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.flows import walk
from ingest.flows.base import FlowInput
from ingest.flows.distance.rules import pair_miles
from ingest.flows.harsh.detect import detect, table, tsp_counts
from ingest.flows.harsh.schema import KINDS
from ingest.flows.motion import moving_track_of
from ingest.flows.track import track_of


@dataclass(frozen=True)
class Part:
    vehicle_id: str
    miles: float  # the miles distance@2 counts (the rates are per 1000 of those)
    counts: np.ndarray  # per kind
    ok: np.ndarray  # per kind: measurable
    reasons: list[str | None]  # per kind: why not


def context(inp: FlowInput) -> str | None:
    """The source label when the fleet-month has TSP events (then they are every vehicle's count), else None."""
    events = inp.tables.get("events")
    if events is None or events.num_rows == 0:
        return None
    return "tsp:" + "+".join(sorted(set(pc.cast(events["source"], pa.string()).to_pylist())))


def _tsp_counts(vehicle_id: str, events: pa.Table | None) -> np.ndarray:
    """Per kind: the vehicle's TSP-reported events (its rows of the month's events)."""
    found = tsp_counts(events, (vehicle_id,))
    return found[0][0] if found is not None else np.zeros(len(KINDS), np.int64)


def vehicle(inp: FlowInput, source: str | None) -> tuple[list[dict[str, Any]], Part]:
    tr = track_of(inp)
    vid = tr.vehicles[0]
    miles = float(np.bincount(tr.pair_vehicle, weights=pair_miles(moving_track_of(inp))[1], minlength=1)[0]) \
        if tr.n > 1 else 0.0
    if source is not None:
        part = Part(vid, miles, _tsp_counts(vid, inp.tables.get("events")), np.ones(len(KINDS), bool), [None] * len(KINDS))
    else:
        det = detect(tr)
        part = Part(vid, miles, np.bincount(det.kind, minlength=len(KINDS)), det.measurable[0], det.reason[0])
    return _table(inp, [part], source).to_pylist()[:1], part


def fleet(inp: FlowInput, source: str | None, parts: list[Part]) -> list[dict[str, Any]]:
    """Vehicles with TSP events but no pings (after the others), then the fleet row."""
    events = inp.tables.get("events")
    have = {p.vehicle_id for p in parts}
    extra = sorted(set(pc.cast(events["vehicle_id"], pa.string()).to_pylist()) - have) \
        if source is not None and events is not None else []
    split = walk.by_vehicle_rows(events) if extra else {}
    parts = [*parts, *(Part(v, 0.0, _tsp_counts(v, split.get(v)), np.ones(len(KINDS), bool), [None] * len(KINDS))
                       for v in extra)]
    if not parts:
        return []
    return _table(inp, parts, source).to_pylist()[len(parts) - len(extra):]


def _table(inp: FlowInput, parts: list[Part], source: str | None) -> pa.Table:
    return table(inp, tuple(p.vehicle_id for p in parts), np.array([p.miles for p in parts]),
                 np.stack([p.counts for p in parts]), np.stack([p.ok for p in parts]), [p.reasons for p in parts],
                 source or "gps")
