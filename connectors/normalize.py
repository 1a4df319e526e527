"""Typed TSP records -> candidate ping columns (partitions.schema.CANDIDATE_SCHEMA).

The hot path builds Arrow arrays from whole columns at once: a column of well-formed floats or
RFC 3339 times converts in one call. Only a column that holds something odd (a number sent as
a string, "NaN", garbage) falls back to per-value parsing, and a record with a value that cannot
be parsed keeps its JSON text in `raw`, which sends it to quarantine with the evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from partitions.schema import CANDIDATE_SCHEMA

_TS = pa.timestamp("ms", tz="UTC")


def float_column(values: Sequence[Any], bad: list[bool], scale: float = 1.0) -> pa.Array:
    """Floats (None -> null); strings holding numbers are accepted; anything else -> null + bad."""
    try:
        arr = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        out: list[float | None] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, float | int) and not isinstance(v, bool):
                out.append(v)
                continue
            try:
                out.append(float(v))  # "41.2" and "NaN" parse; NaN is judged by validation
            except (TypeError, ValueError):
                out.append(None)
                bad[i] = True
        arr = pa.array(out, pa.float64())
    return arr if scale == 1.0 else pc.multiply(arr, pa.scalar(scale))


def time_column(values: Sequence[str | None], bad: list[bool]) -> pa.Array:
    """RFC 3339 strings -> timestamp(ms, UTC); unparseable -> null + bad."""
    try:
        return pc.cast(pa.array(values, pa.string()), _TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out: list[int | None] = []
        for i, v in enumerate(values):
            try:
                out.append(int(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp() * 1000))
            except (TypeError, ValueError):
                out.append(None)
                if v is not None:
                    bad[i] = True
        return pa.array(out, pa.int64()).cast(_TS)


def candidate_table(fleet_id: str, source: str, vehicle_ids: pa.Array, records: Sequence[msgspec.Struct],
                    times: Sequence[str | None], lat: Sequence[Any], lon: Sequence[Any], speed: Sequence[Any],
                    heading: Sequence[Any], odometer: Sequence[Any] | None, speed_scale: float = 1.0,
                    odometer_scale: float = 1.0) -> pa.Table:
    n = len(records)
    bad = [False] * n
    ts = time_column(times, bad)
    cols = {
        "lat": float_column(lat, bad), "lon": float_column(lon, bad),
        "speed_mph": float_column(speed, bad, speed_scale), "heading_deg": float_column(heading, bad),
        "odometer_mi": float_column(odometer, bad, odometer_scale) if odometer is not None else pa.nulls(n, pa.float64()),
    }
    raw = pa.array([msgspec.json.encode(r).decode() if b else None for r, b in zip(records, bad)], pa.string()) \
        if any(bad) else pa.nulls(n, pa.string())
    return pa.Table.from_arrays([
        pa.array([fleet_id] * n, pa.string()) if n else pa.array([], pa.string()),
        vehicle_ids, ts, cols["lat"], cols["lon"], cols["speed_mph"], cols["heading_deg"], cols["odometer_mi"],
        pa.array([source] * n, pa.string()) if n else pa.array([], pa.string()), raw,
    ], schema=CANDIDATE_SCHEMA)


def decode_page(tsp: str, decoder: msgspec.json.Decoder, content: bytes, what: str) -> Any:
    """Typed decode of a response body; a body of the wrong shape is a MalformedResponse."""
    from common.errors import MalformedResponse

    try:
        return decoder.decode(content)
    except msgspec.DecodeError as e:
        raise MalformedResponse(tsp, f"{what}: response is not the documented shape ({e})") from None


def empty_candidates() -> pa.Table:
    return CANDIDATE_SCHEMA.empty_table()


def event_table(fleet_id: str, source: str, records: Sequence[msgspec.Struct], vehicle_ids: Sequence[str | None],
                event_ids: Sequence[str | None], times: Sequence[str | None], kinds: Sequence[str],
                tsp_kinds: Sequence[str], lat: Sequence[Any], lon: Sequence[Any], speed: Sequence[Any],
                speed_scale: float = 1.0) -> pa.Table:
    """Typed TSP event records -> candidate events (partitions.schema.EVENT_CANDIDATE_SCHEMA)."""
    from partitions.schema import EVENT_CANDIDATE_SCHEMA

    n = len(records)
    bad = [False] * n
    cols = [pa.array([fleet_id] * n, pa.string()), pa.array(vehicle_ids, pa.string()), time_column(times, bad),
            pa.array(kinds, pa.string()), pa.array(tsp_kinds, pa.string()), pa.array(event_ids, pa.string()),
            float_column(lat, bad), float_column(lon, bad), float_column(speed, bad, speed_scale),
            pa.array([source] * n, pa.string())]
    raw = pa.array([msgspec.json.encode(r).decode() if b else None for r, b in zip(records, bad)], pa.string())
    return pa.Table.from_arrays([*cols, raw], schema=EVENT_CANDIDATE_SCHEMA)
