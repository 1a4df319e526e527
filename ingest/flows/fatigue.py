"""fatigue v1: night driving and hours-of-service patterns per vehicle-month (docs/features.md).

The limits are the FMCSA property-carrying rules (49 CFR 395.3): at most 11 hours of driving
after 10 consecutive hours off duty, and a 30-minute break after 8 cumulative hours of driving.
Off-duty time is taken to be time without driving: pings do not say whether a driver was on duty.
"""

from __future__ import annotations

import pyarrow as pa

from ingest.flows.base import Flow, FlowInput
from ingest.flows.rollup import key_columns, select, vehicle_and_fleet_rows
from ingest.flows.track import COLUMNS, Track, track_of

NIGHT_START_H, NIGHT_END_H = 0.0, 6.0  # local time, the circadian low
DUTY_REST_S = 10 * 3600  # 10 hours without driving start a new duty period
DUTY_DRIVING_LIMIT_H = 11.0
BREAK_S = 30 * 60  # a 30 minute interruption of driving is a break
STRETCH_LIMIT_H = 8.0

SCHEMA = pa.schema([
    *key_columns(),
    ("driving_hours", pa.float64()), ("night_driving_hours", pa.float64()), ("night_share", pa.float64()),
    ("duty_periods", pa.int64()), ("duty_periods_over_11h", pa.int64()), ("max_duty_driving_hours", pa.float64()),
    ("stretches_over_8h", pa.int64()), ("max_stretch_hours", pa.float64()),
    ("complete_month", pa.bool_()),
])


def compute(inp: FlowInput) -> pa.Table:
    return compute_track(inp, track_of(inp))


def compute_track(inp: FlowInput, tr: Track) -> pa.Table:
    """The feature table from an already loaded track (v2 hands in one with idle drift removed)."""
    if tr.n == 0:
        return SCHEMA.empty_table()
    p = tr.pairs
    pair_owner = tr.pair_vehicle
    # A pair's driving is night driving when the local time at its first ping is in the window.
    hour = tr.local_hour[:-1]
    night = (hour >= NIGHT_START_H) & (hour < NIGHT_END_H)
    duty = tr.segments(DUTY_REST_S)
    stretch = tr.segments(BREAK_S)

    def summarise(v: int | None) -> dict[str, object]:
        sl = select(pair_owner, v)  # driving time is 0 for pairs across vehicles
        driving = float(p.driving_s[sl].sum() / 3600.0)
        night_h = float(p.driving_s[sl][night[sl]].sum() / 3600.0)
        dh = duty.driving_s[select(duty.vehicle, v)] / 3600.0
        sh = stretch.driving_s[select(stretch.vehicle, v)] / 3600.0
        return {"driving_hours": driving, "night_driving_hours": night_h,
                "night_share": night_h / driving if driving > 0 else None,
                "duty_periods": int(dh.size), "duty_periods_over_11h": int((dh > DUTY_DRIVING_LIMIT_H).sum()),
                "max_duty_driving_hours": float(dh.max()) if dh.size else None,
                "stretches_over_8h": int((sh > STRETCH_LIMIT_H).sum()),
                "max_stretch_hours": float(sh.max()) if sh.size else None}

    return vehicle_and_fleet_rows(inp, tr.vehicles, SCHEMA, summarise)


FLOW = Flow("fatigue", 1, ("pings",), SCHEMA, compute, columns=COLUMNS)
