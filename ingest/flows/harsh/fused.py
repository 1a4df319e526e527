"""harsh v4's walk: braking and acceleration from ingest/signals/harsh.py (issue 26), turns as v3.

What changes against v3, for GPS-derived counts only (TSP events are counted as before):
- braking and acceleration: the fused speed (Doppler outliers that position change contradicts
  are replaced), the threshold plus one (not two) of the device's own noise, a change the
  neighbouring pairs do not undo; null with the reason where the median driving interval is
  over 1.5 s, as before;
- the rates are per 1000 of distance v3's miles (odometer where trusted).
Sharp turns keep v3's rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest.flows.base import FlowInput
from ingest.flows.harsh.detect import detect
from ingest.flows.harsh.rules import Part, _table, _tsp_counts, context, fleet
from ingest.flows.harsh.schema import KINDS
from ingest.flows.signals import fused_of, miles_of, series_of
from ingest.flows.track import track_of
from ingest.signals import harsh

__all__ = ["context", "fleet", "vehicle"]


def vehicle(inp: FlowInput, source: str | None) -> tuple[list[dict[str, Any]], Part]:
    s = series_of(inp)
    miles = miles_of(inp).miles if s.n > 1 else 0.0
    if source is not None:
        part = Part(s.vehicle_id, miles, _tsp_counts(s.vehicle_id, inp.tables.get("events")), np.ones(len(KINDS), bool),
                    [None] * len(KINDS))
    else:
        tr = track_of(inp)
        turns = detect(tr)
        found = harsh.detect(s, fused_of(inp))
        ok = found.reason is None
        counts = np.array([found.brake_ms.size, found.accel_ms.size, int((turns.kind == 2).sum())], np.int64)
        part = Part(s.vehicle_id, miles, counts, np.array([ok, ok, bool(turns.measurable[0, 2])]),
                    [found.reason, found.reason, turns.reason[0][2]])
    return _table(inp, [part], source).to_pylist()[:1], part
