"""TSP records -> candidate ping columns (partitions.schema.CANDIDATE_SCHEMA).

The hot path builds Arrow arrays from whole columns at once: a column of well-formed floats or
RFC 3339 times converts in one call. Only a column that holds something odd (a number sent as
a string, "NaN", garbage) falls back to per-value parsing, and a record with a value that cannot
be parsed keeps its JSON text in `raw`: validation then nulls that field (an optional one) or
quarantines the record with the evidence (its time or position).

Pages are decoded the same way: one typed msgspec decode for the whole body, and only a body
that fails it is decoded again record by record (`salvage`), so one mistyped value costs its
record's field, never the page.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence, TypeVar

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partitions.schema import CANDIDATE_SCHEMA

_TS = pa.timestamp("ms", tz="UTC")
T = TypeVar("T")


class Loose:
    """A record that did not fit its typed shape, read field by field from its JSON value.

    Attribute access returns the raw JSON value (or None), so connector code reads a Loose record
    exactly as it reads the typed one; the column builders below judge each value on its own.
    `broken` marks a record that is not even a JSON object: it always goes to quarantine.
    """

    __slots__ = ("value", "broken")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.broken = not isinstance(value, dict)

    def __getattr__(self, name: str) -> Any:
        return self.value.get(name) if isinstance(self.value, dict) else None


def raw_text(record: Any) -> str:
    return msgspec.json.encode(record.value if isinstance(record, Loose) else record).decode()


def convert_each(items: Any, record_type: type[T]) -> list[T | Loose]:
    """Each JSON item as record_type, or as a Loose view of it when it does not convert."""
    out: list[T | Loose] = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(msgspec.convert(item, record_type))
        except msgspec.ValidationError:
            out.append(Loose(item))
    return out


def decode_or_salvage(tsp: str, decoder: msgspec.json.Decoder, content: bytes, what: str) -> tuple[Any, Any]:
    """(typed page, None), or (None, the body as plain JSON) when the typed decode failed.

    A body that is not JSON at all, or not an object, is a MalformedResponse: there is no record
    in it to save.
    """
    from common.errors import MalformedResponse

    try:
        return decoder.decode(content), None
    except msgspec.DecodeError as e:
        typed_error = e
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        raise MalformedResponse(tsp, f"{what}: response is not JSON ({typed_error})") from None
    if not isinstance(body, dict):
        raise MalformedResponse(tsp, f"{what}: response is not the documented shape ({typed_error})")
    return None, body


def float_column(values: Sequence[Any], bad: list[bool], scale: float = 1.0, loose: bool = False) -> pa.Array:
    """Floats (None -> null); strings holding numbers are accepted; anything else -> null + bad.

    `loose`: the values come from records that failed the typed decode, so they may be anything
    (Arrow would quietly read `true` as 1.0): judge each one.
    """
    try:
        if loose:
            raise pa.ArrowInvalid("judge each value")
        arr = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        out: list[float | None] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, float | int) and not isinstance(v, bool):
                out.append(v)
                continue
            try:
                if isinstance(v, bool):
                    raise TypeError("a boolean is not a number")
                out.append(float(v))  # "41.2" and "NaN" parse; NaN is judged by validation
            except (TypeError, ValueError):
                out.append(None)
                bad[i] = True
        arr = pa.array(out, pa.float64())
    return arr if scale == 1.0 else pc.multiply(arr, pa.scalar(scale))


def _epoch_ms(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    # Integer arithmetic: float seconds * 1000 would turn .123 into 122.99999.
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def time_column(values: Sequence[Any], bad: list[bool]) -> pa.Array:
    """RFC 3339 strings (Z or any offset, with or without fractions) -> timestamp(ms, UTC)."""
    try:
        return pc.cast(pa.array(values, pa.string()), _TS)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        out: list[int | None] = []
        for i, v in enumerate(values):
            try:
                if not isinstance(v, str):
                    raise TypeError("not a string")
                out.append(_epoch_ms(v))
            except (TypeError, ValueError):
                out.append(None)
                if v is not None:
                    bad[i] = True
        return pa.array(out, pa.int64()).cast(_TS)


def nearest_in_time(ts: pa.Array, ref_ts: pa.Array, ref_values: pa.Array, tolerance_ms: int) -> pa.Array:
    """For each ts, the ref value whose time is nearest, if within tolerance_ms; else null.

    Used to put a separately reported series (Samsara's odometer) beside GPS points: the two
    streams are sampled on their own clocks, so exact time equality almost never holds.
    """
    n = len(ts)
    keep = pc.and_(pc.is_valid(ref_ts), pc.is_valid(ref_values))
    rt = np.asarray(pc.cast(ref_ts.filter(keep), pa.int64()), dtype=np.int64)
    rv = np.asarray(ref_values.filter(keep).to_numpy(zero_copy_only=False), dtype=np.float64)
    if not len(rt) or not n:
        return pa.nulls(n, pa.float64())
    order = np.argsort(rt, kind="stable")
    rt, rv = rt[order], rv[order]
    t_valid = np.asarray(pc.is_valid(ts))
    t = np.asarray(pc.fill_null(pc.cast(ts, pa.int64()), 0), dtype=np.int64)
    right = np.clip(np.searchsorted(rt, t), 0, len(rt) - 1)
    left = np.clip(right - 1, 0, len(rt) - 1)
    pick = np.where(np.abs(rt[left] - t) <= np.abs(rt[right] - t), left, right)
    ok = t_valid & (np.abs(rt[pick] - t) <= tolerance_ms)
    return pa.array(rv[pick], pa.float64(), mask=~ok)


def candidate_table(fleet_id: str, source: str, vehicle_ids: pa.Array, records: Sequence[Any],
                    times: Sequence[Any], lat: Sequence[Any], lon: Sequence[Any], speed: Sequence[Any],
                    heading: Sequence[Any], odometer: Sequence[Any] | None, speed_scale: float = 1.0,
                    odometer_scale: float = 1.0, odometer_fill: pa.Array | None = None,
                    loose: bool | None = None) -> pa.Table:
    """Candidate pings; `odometer_fill` (already scaled) stands in where a record has no odometer.

    `loose`: whether any record is a Loose one (None: look); a caller that decoded the page in one
    typed pass knows there is none, and saves a scan per record.
    """
    n = len(records)
    if loose is None:
        loose = any(isinstance(r, Loose) for r in records)
    bad = [isinstance(r, Loose) and r.broken for r in records] if loose else [False] * n
    ts = time_column(times, bad)
    odo = float_column(odometer, bad, odometer_scale, loose) if odometer is not None else pa.nulls(n, pa.float64())
    if odometer_fill is not None:
        odo = pc.coalesce(odo, odometer_fill)
    cols = {
        "lat": float_column(lat, bad, 1.0, loose), "lon": float_column(lon, bad, 1.0, loose),
        "speed_mph": float_column(speed, bad, speed_scale, loose),
        "heading_deg": float_column(heading, bad, 1.0, loose),
    }
    raw = pa.array([raw_text(r) if b else None for r, b in zip(records, bad)], pa.string()) \
        if any(bad) else pa.nulls(n, pa.string())
    return pa.Table.from_arrays([
        repeated(fleet_id, n), vehicle_ids, ts, cols["lat"], cols["lon"], cols["speed_mph"], cols["heading_deg"], odo,
        repeated(source, n), raw,
    ], schema=CANDIDATE_SCHEMA)


def repeated(text: str, n: int) -> pa.Array:
    """A string column of one value (a slice's fleet, source or vehicle): built in Arrow, not from
    a Python list of n references (a tenth of normalising a ping)."""
    return pa.repeat(pa.scalar(text, pa.string()), n)


def decode_page(tsp: str, decoder: msgspec.json.Decoder, content: bytes, what: str) -> Any:
    """Typed decode of a response body; a body of the wrong shape is a MalformedResponse."""
    from common.errors import MalformedResponse

    try:
        return decoder.decode(content)
    except msgspec.DecodeError as e:
        raise MalformedResponse(tsp, f"{what}: response is not the documented shape ({e})") from None


def empty_candidates() -> pa.Table:
    return CANDIDATE_SCHEMA.empty_table()


def event_table(fleet_id: str, source: str, records: Sequence[Any], vehicle_ids: Sequence[str | None],
                event_ids: Sequence[str | None], times: Sequence[Any], kinds: Sequence[str],
                tsp_kinds: Sequence[str], lat: Sequence[Any], lon: Sequence[Any], speed: Sequence[Any],
                speed_scale: float = 1.0) -> pa.Table:
    """TSP event records -> candidate events (partitions.schema.EVENT_CANDIDATE_SCHEMA)."""
    from partitions.schema import EVENT_CANDIDATE_SCHEMA

    n = len(records)
    bad = [isinstance(r, Loose) and r.broken for r in records]
    loose = any(isinstance(r, Loose) for r in records)
    cols = [repeated(fleet_id, n), pa.array(vehicle_ids, pa.string()), time_column(times, bad),
            pa.array(kinds, pa.string()), pa.array(tsp_kinds, pa.string()), pa.array(event_ids, pa.string()),
            float_column(lat, bad, 1.0, loose), float_column(lon, bad, 1.0, loose),
            float_column(speed, bad, speed_scale, loose),
            repeated(source, n)]
    raw = pa.array([raw_text(r) if b else None for r, b in zip(records, bad)], pa.string())
    return pa.Table.from_arrays([*cols, raw], schema=EVENT_CANDIDATE_SCHEMA)
