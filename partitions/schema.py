"""The canonical ping schema (defined here, once), the quarantine schema, and ping validation.

Connectors hand over *candidate* pings: the canonical columns as plain nullable types (a value
they could not parse is null, with the record's raw text in `raw`). `split_valid` turns them into
canonical pings plus quarantined rows with a reason. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SOURCES = ("samsara", "motive")

PING_SCHEMA = pa.schema([
    pa.field("fleet_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("vehicle_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("lat", pa.float64(), nullable=False),
    pa.field("lon", pa.float64(), nullable=False),
    pa.field("speed_mph", pa.float32()),
    pa.field("heading_deg", pa.float32()),
    pa.field("odometer_mi", pa.float64()),
    pa.field("source", pa.dictionary(pa.int8(), pa.string()), nullable=False),
])

CANDIDATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()),
    ("vehicle_id", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")),
    ("lat", pa.float64()),
    ("lon", pa.float64()),
    ("speed_mph", pa.float64()),
    ("heading_deg", pa.float64()),
    ("odometer_mi", pa.float64()),
    ("source", pa.string()),
    # The record as received, set only when one of its values could not be parsed (the value is
    # then null); such a row is always quarantined, with this text as evidence.
    ("raw", pa.string()),
])

QUARANTINE_SCHEMA = CANDIDATE_SCHEMA.append(pa.field("reason", pa.string()))

# Telematics did not exist before this; anything earlier is a device or parsing error.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
FUTURE_SLACK_MS = 86_400_000  # device clocks run a little ahead; a day ahead of now is not plausible
MAX_SPEED_MPH = 200.0


@dataclass(frozen=True)
class Split:
    valid: pa.Table  # PING_SCHEMA
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    # Optional values (heading, speed, odometer) of valid rows that were impossible or
    # unparseable and became null, by reason. The ping itself landed.
    nulled: dict[str, int] = field(default_factory=dict)


def candidates(columns: dict[str, object]) -> pa.Table:
    """Build a candidate table from column arrays; missing columns are all-null."""
    n = None
    for v in columns.values():
        n = len(v)  # type: ignore[arg-type]
        break
    arrays = []
    for f in CANDIDATE_SCHEMA:
        col = columns.get(f.name)
        arrays.append(pa.nulls(n or 0, f.type) if col is None else pa.array(col, f.type))
    return pa.Table.from_arrays(arrays, schema=CANDIDATE_SCHEMA)


def first_reason(checks: list[tuple[object, str]], n: int, prefix: str = "") -> pa.Array:
    """Per row, the first check (in order) that failed, or null when all passed.

    The checks are folded into one small integer per row (numpy), and strings are built only
    for rows that failed one: a page without a bad row, the usual case, builds none.
    """
    code = np.zeros(n, np.int8)  # 0: passed every check; i + 1: check i failed first
    for i in range(len(checks) - 1, -1, -1):
        bad = _mask(checks[i][0])
        if bad.any():
            code[bad] = i + 1
    if not code.any():
        return pa.nulls(n, pa.string())
    labels = pa.array([None] + [prefix + why for _, why in checks], pa.string())
    return labels.take(pa.array(code))


def _mask(values: object) -> np.ndarray:
    """A boolean Arrow result (nulls: false) as a numpy bool array."""
    filled = pc.fill_null(values, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled, dtype=bool)


def _null_where(values: pa.ChunkedArray, impossible: object) -> tuple[pa.ChunkedArray, int]:
    impossible = pc.fill_null(impossible, False)
    count = pc.sum(impossible).as_py() or 0
    if not count:
        return values, 0  # nothing to null: the column as it is (no copy)
    return pc.if_else(impossible, pa.scalar(None, values.type), values), count


def _heading(h: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
    """Headings into [0, 360): 360 is north (devices send it), and [-180, 0) is the signed
    convention some send; anything else (NaN, infinite, beyond) cannot be a heading -> null."""
    inside = pc.and_(pc.greater_equal(h, 0.0), pc.less(h, 360.0))  # false for NaN
    if pc.all(pc.fill_null(inside, True)).as_py():
        return h, 0  # all already in [0, 360) or null: nothing to wrap or null
    usable = pc.and_(pc.greater_equal(h, -180.0), pc.less_equal(h, 360.0))  # false for NaN
    wrapped = pc.subtract(h, pc.multiply(pc.floor(pc.divide(h, 360.0)), 360.0))
    return _null_where(pc.if_else(usable, wrapped, h), pc.invert(usable))


def split_valid(table: pa.Table, now_ms: int) -> Split:
    """Canonical pings, quarantined rows (each with the first reason that applies), nulled fields.

    Only what makes a ping unusable quarantines it: no fleet, vehicle or source, an invalid time,
    an invalid position. A bad optional value (heading, speed, odometer; impossible, or sent but
    unparseable) costs that value: it becomes null and is counted in `nulled`.
    """
    # One chunk per column (a slice arrives as one chunk per page): each check below is then one
    # kernel call over the slice, not one per page.
    t = table.select(CANDIDATE_SCHEMA.names).cast(CANDIDATE_SCHEMA).combine_chunks()
    lat, lon = t["lat"], t["lon"]
    ts_ms = pc.cast(t["ts"], pa.int64())
    checks = [
        (pc.or_kleene(pc.is_null(t["fleet_id"]), pc.equal(pc.utf8_length(t["fleet_id"]), 0)), "missing fleet_id"),
        (pc.or_kleene(pc.is_null(t["vehicle_id"]), pc.equal(pc.utf8_length(t["vehicle_id"]), 0)),
         "missing vehicle_id"),
        (pc.invert(pc.is_in(t["source"], pa.array(SOURCES))), "unknown source"),
        (pc.is_null(ts_ms), "missing or unparseable timestamp"),
        (pc.or_(pc.less(ts_ms, MIN_TS_MS), pc.greater(ts_ms, now_ms + FUTURE_SLACK_MS)), "timestamp out of range"),
        (pc.or_(pc.is_null(lat), pc.is_null(lon)), "missing coordinates"),
        (pc.or_(pc.is_nan(lat), pc.is_nan(lon)), "NaN coordinates"),
        (pc.or_(pc.greater(pc.abs(lat), 90.0), pc.greater(pc.abs(lon), 180.0)), "coordinates out of range"),
        (pc.and_(pc.equal(lat, 0.0), pc.equal(lon, 0.0)), "null island (0, 0)"),
    ]
    reason = first_reason(checks, len(t))
    any_bad = reason.null_count < len(reason)
    is_bad = pc.is_valid(reason)
    good = t.filter(pc.invert(is_bad)) if any_bad else t
    speed, heading, odo = good["speed_mph"], good["heading_deg"], good["odometer_mi"]
    nulled: dict[str, int] = {}
    heading, nulled["heading out of range"] = _heading(heading)
    speed, nulled["speed out of range"] = _null_where(
        speed, pc.invert(pc.and_(pc.greater_equal(speed, 0.0), pc.less_equal(speed, MAX_SPEED_MPH))))
    odo, nulled["odometer out of range"] = _null_where(
        odo, pc.invert(pc.and_(pc.greater_equal(odo, 0.0), pc.less(odo, float("inf")))))
    # `raw` is set only when a value was sent but could not be parsed; on a row that passed the
    # checks above that value was an optional one, already null.
    nulled["unparseable optional value"] = good.num_rows - good["raw"].null_count
    valid = pa.Table.from_arrays([
        pc.dictionary_encode(good["fleet_id"]).cast(PING_SCHEMA.field("fleet_id").type),
        pc.dictionary_encode(good["vehicle_id"]).cast(PING_SCHEMA.field("vehicle_id").type),
        good["ts"],
        good["lat"],
        good["lon"],
        pc.cast(speed, pa.float32()),
        pc.cast(heading, pa.float32()),
        odo,
        pc.dictionary_encode(good["source"]).cast(PING_SCHEMA.field("source").type),
    ], schema=PING_SCHEMA)
    bad_rows = (t.filter(is_bad).append_column("reason", reason.filter(is_bad)) if any_bad
                else t.slice(0, 0).append_column("reason", pa.array([], pa.string())))
    return Split(valid, bad_rows.cast(QUARANTINE_SCHEMA), {k: v for k, v in nulled.items() if v})


# --------------------------------------------------------------------------- TSP safety events
EVENT_KINDS = ("harsh_brake", "harsh_accel", "harsh_turn", "other")

EVENT_SCHEMA = pa.schema([
    pa.field("fleet_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("vehicle_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("kind", pa.dictionary(pa.int8(), pa.string()), nullable=False),  # one of EVENT_KINDS
    pa.field("tsp_kind", pa.string(), nullable=False),  # the TSP's own label, kept verbatim
    pa.field("event_id", pa.string(), nullable=False),  # the TSP's id: the dedup key with source
    pa.field("lat", pa.float64()),
    pa.field("lon", pa.float64()),
    pa.field("speed_mph", pa.float32()),
    pa.field("source", pa.dictionary(pa.int8(), pa.string()), nullable=False),
])

EVENT_CANDIDATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("vehicle_id", pa.string()), ("ts", pa.timestamp("ms", tz="UTC")),
    ("kind", pa.string()), ("tsp_kind", pa.string()), ("event_id", pa.string()),
    ("lat", pa.float64()), ("lon", pa.float64()), ("speed_mph", pa.float64()), ("source", pa.string()),
    ("raw", pa.string()),
])


def split_valid_events(table: pa.Table, now_ms: int) -> Split:
    """Canonical events, and rejected ones as quarantine rows (reason prefixed 'event: ')."""
    t = table.select(EVENT_CANDIDATE_SCHEMA.names).cast(EVENT_CANDIDATE_SCHEMA)
    ts_ms = pc.cast(t["ts"], pa.int64())
    lat, lon = t["lat"], t["lon"]
    checks = [
        (pc.or_kleene(pc.is_null(t["vehicle_id"]), pc.equal(pc.utf8_length(t["vehicle_id"]), 0)), "missing vehicle_id"),
        (pc.or_kleene(pc.is_null(t["event_id"]), pc.equal(pc.utf8_length(t["event_id"]), 0)), "missing event id"),
        (pc.invert(pc.is_in(t["source"], pa.array(SOURCES))), "unknown source"),
        (pc.invert(pc.is_in(t["kind"], pa.array(EVENT_KINDS))), "unknown kind"),
        (pc.is_null(ts_ms), "missing or unparseable timestamp"),
        (pc.or_(pc.less(ts_ms, MIN_TS_MS), pc.greater(ts_ms, now_ms + FUTURE_SLACK_MS)), "timestamp out of range"),
        (pc.or_(pc.greater(pc.abs(lat), 90.0), pc.greater(pc.abs(lon), 180.0)), "coordinates out of range"),
        (pc.is_valid(t["raw"]), "unparseable value"),
    ]
    reason = first_reason(checks, len(t), prefix="event: ")
    is_bad = pc.is_valid(reason)
    good = t.filter(pc.invert(is_bad))
    valid = pa.Table.from_arrays([
        pc.dictionary_encode(good["fleet_id"]).cast(EVENT_SCHEMA.field("fleet_id").type),
        pc.dictionary_encode(good["vehicle_id"]).cast(EVENT_SCHEMA.field("vehicle_id").type),
        good["ts"],
        pc.dictionary_encode(good["kind"]).cast(EVENT_SCHEMA.field("kind").type),
        pc.fill_null(good["tsp_kind"], ""), good["event_id"], good["lat"], good["lon"],
        pc.cast(good["speed_mph"], pa.float32()),
        pc.dictionary_encode(good["source"]).cast(EVENT_SCHEMA.field("source").type),
    ], schema=EVENT_SCHEMA)
    bad = t.filter(is_bad)
    n = bad.num_rows
    quarantine = pa.Table.from_arrays([
        bad["fleet_id"], bad["vehicle_id"], bad["ts"], bad["lat"], bad["lon"], bad["speed_mph"],
        pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64()), bad["source"],
        pc.if_else(pc.is_valid(bad["raw"]), bad["raw"], pc.binary_join_element_wise(
            pa.array(["event "] * n, pa.string()), pc.fill_null(bad["event_id"], "?"), "")),
        reason.filter(is_bad),
    ], schema=QUARANTINE_SCHEMA)
    return Split(valid, quarantine)




# --------------------------------------------------------------------------- drivers and hours of service
# Driver data is personal data: only what features need is kept (id and display name); licence
# numbers, phones and e-mails the TSPs send are never landed (docs/storage.md).
DUTY_STATUSES = ("off_duty", "sleeper", "driving", "on_duty", "yard_move", "personal_conveyance", "other")
VIOLATION_KINDS = ("driving_11", "duty_14", "break_30", "cycle_60", "cycle_70", "other")

_DICT = pa.dictionary(pa.int32(), pa.string())
_SRC = pa.dictionary(pa.int8(), pa.string())
_TS = pa.timestamp("ms", tz="UTC")

DRIVER_SCHEMA = pa.schema([
    pa.field("fleet_id", _DICT, nullable=False),
    pa.field("driver_id", pa.string(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("source", _SRC, nullable=False),
])
# Who was logged in to which vehicle, [start_ts, end_ts); end_ts null: still logged in. Records
# that cross a month's end are cut there, each piece in its own month, so a month's partition
# alone says who drove in it (and a late change touches only the months it is in).
ASSIGNMENT_SCHEMA = pa.schema([
    pa.field("fleet_id", _DICT, nullable=False),
    pa.field("vehicle_id", _DICT, nullable=False),
    pa.field("driver_id", pa.string(), nullable=False),
    pa.field("start_ts", _TS, nullable=False),
    pa.field("end_ts", _TS),
    pa.field("tsp_kind", pa.string(), nullable=False),  # Samsara's assignmentType, Motive: driving_period
    pa.field("source", _SRC, nullable=False),
])
HOS_LOG_SCHEMA = pa.schema([
    pa.field("fleet_id", _DICT, nullable=False),
    pa.field("driver_id", pa.string(), nullable=False),
    pa.field("vehicle_id", pa.string()),
    pa.field("start_ts", _TS, nullable=False),
    pa.field("end_ts", _TS),  # null: the status still runs
    pa.field("status", _SRC, nullable=False),  # one of DUTY_STATUSES
    pa.field("tsp_status", pa.string(), nullable=False),
    pa.field("source", _SRC, nullable=False),
])
HOS_VIOLATION_SCHEMA = pa.schema([
    pa.field("fleet_id", _DICT, nullable=False),
    pa.field("driver_id", pa.string(), nullable=False),
    pa.field("ts", _TS, nullable=False),
    pa.field("kind", _SRC, nullable=False),  # one of VIOLATION_KINDS
    pa.field("tsp_kind", pa.string(), nullable=False),
    pa.field("duration_s", pa.float64()),
    pa.field("source", _SRC, nullable=False),
])

# What connectors hand over: plain nullable columns, `raw` set when a value could not be parsed.
DRIVER_CANDIDATE_SCHEMA = pa.schema([("fleet_id", pa.string()), ("driver_id", pa.string()), ("name", pa.string()),
                                     ("source", pa.string())])
ASSIGNMENT_CANDIDATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("vehicle_id", pa.string()), ("driver_id", pa.string()), ("start_ts", _TS),
    ("end_ts", _TS), ("tsp_kind", pa.string()), ("source", pa.string()), ("raw", pa.string())])
HOS_LOG_CANDIDATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("driver_id", pa.string()), ("vehicle_id", pa.string()), ("start_ts", _TS),
    ("end_ts", _TS), ("status", pa.string()), ("tsp_status", pa.string()), ("source", pa.string()),
    ("raw", pa.string())])
HOS_VIOLATION_CANDIDATE_SCHEMA = pa.schema([
    ("fleet_id", pa.string()), ("driver_id", pa.string()), ("ts", _TS), ("kind", pa.string()),
    ("tsp_kind", pa.string()), ("duration_s", pa.float64()), ("source", pa.string()), ("raw", pa.string())])

HOS_DATASETS = {"assignments": (ASSIGNMENT_SCHEMA, ASSIGNMENT_CANDIDATE_SCHEMA),
                "hos_logs": (HOS_LOG_SCHEMA, HOS_LOG_CANDIDATE_SCHEMA),
                "hos_violations": (HOS_VIOLATION_SCHEMA, HOS_VIOLATION_CANDIDATE_SCHEMA)}


# Longer than any id or label a TSP issues: a record with a longer id is quarantined, a longer
# label cut (connectors pass them through as sent; a hostile one can be megabytes).
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 64
MAX_EVIDENCE_CHARS = 4096


def _too_long(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.greater(pc.utf8_length(col), MAX_ID_CHARS), False)


def _blank(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_length(col), 0))


def _time_checks(ts: pa.ChunkedArray, name: str, now_ms: int) -> list[tuple[object, str]]:
    ms = pc.cast(ts, pa.int64())
    return [(pc.is_null(ms), f"missing or unparseable {name}"),
            (pc.or_(pc.less(ms, MIN_TS_MS), pc.greater(ms, now_ms + FUTURE_SLACK_MS)), f"{name} out of range")]


def split_valid_hos(dataset: str, table: pa.Table, now_ms: int) -> Split:
    """Canonical rows of one of HOS_DATASETS and quarantined ones (reason prefixed with the dataset).

    Quarantined: no fleet, driver (or vehicle, for an assignment) or source, an id longer than
    MAX_ID_CHARS, an unusable time, an interval that ends before it starts (the evidence cut to
    MAX_EVIDENCE_CHARS). A status or violation type fleetlake does not know lands as `other` with
    the TSP's label kept; a label that is not text or longer than MAX_LABEL_CHARS becomes "", a
    duration that is negative or unparseable null (each counted in `nulled`).
    """
    schema, cand = HOS_DATASETS[dataset]
    t = table.select(cand.names).cast(cand)
    checks: list[tuple[object, str]] = [(_blank(t["fleet_id"]), "missing fleet_id"),
                                        (_blank(t["driver_id"]), "missing driver id"),
                                        (_too_long(t["driver_id"]), "driver id too long"),
                                        (pc.invert(pc.is_in(t["source"], pa.array(SOURCES))), "unknown source")]
    if dataset == "assignments":
        checks.append((_blank(t["vehicle_id"]), "missing vehicle_id"))
    if "vehicle_id" in t.column_names:
        checks.append((_too_long(t["vehicle_id"]), "vehicle_id too long"))
    if dataset == "hos_violations":
        checks += _time_checks(t["ts"], "timestamp", now_ms)
    else:
        checks += _time_checks(t["start_ts"], "start time", now_ms)
        end = pc.cast(t["end_ts"], pa.int64())
        checks.append((pc.and_(pc.is_valid(end), pc.less(end, pc.cast(t["start_ts"], pa.int64()))),
                       "ends before it starts"))
        checks.append((pc.and_(pc.is_null(t["end_ts"]), pc.is_valid(t["raw"])), "unparseable end time"))
    if dataset == "hos_violations":
        checks.append((pc.and_(pc.is_valid(t["raw"]), pc.is_valid(t["duration_s"])), "unparseable value"))
    reason = first_reason(checks, len(t), prefix=dataset.replace("_", " ") + ": ")
    is_bad = pc.is_valid(reason)
    good = t.filter(pc.invert(is_bad))
    nulled: dict[str, int] = {}
    cols: dict[str, object] = {}
    for f in schema:
        col = good[f.name]
        if f.name == "status":
            col = pc.if_else(pc.is_in(col, pa.array(DUTY_STATUSES)), col, pa.scalar("other"))
        elif f.name == "kind":
            col = pc.if_else(pc.is_in(col, pa.array(VIOLATION_KINDS)), col, pa.scalar("other"))
        elif f.name == "duration_s":
            col, n = _null_where(col, pc.invert(pc.greater_equal(col, 0.0)))
            nulled["duration out of range"] = n + (pc.sum(pc.and_(pc.is_valid(good["raw"]),
                                                                  pc.is_null(good["duration_s"]))).as_py() or 0)
        elif f.name == "tsp_status" or f.name == "tsp_kind":
            # The TSP's label, kept for evidence: one sent as no text (null here) or longer than any
            # real label is cut to "" (its status or type is `other` then), counted.
            nulled["label not text"] = pc.sum(pc.is_null(col)).as_py() or 0
            long = pc.fill_null(pc.greater(pc.utf8_length(col), MAX_LABEL_CHARS), False)
            nulled["label too long"] = pc.sum(long).as_py() or 0
            col = pc.if_else(long, pa.scalar(""), pc.fill_null(col, ""))
        cols[f.name] = pc.dictionary_encode(col).cast(f.type) if pa.types.is_dictionary(f.type) else col.cast(f.type)
    valid = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    bad = t.filter(is_bad)
    n = bad.num_rows
    when = bad["ts"] if dataset == "hos_violations" else bad["start_ts"]
    who = pc.binary_join_element_wise(pa.array([f"{dataset} driver "] * n, pa.string()),
                                      pc.fill_null(bad["driver_id"], "?"), "")
    # Evidence is bounded: a hostile record's megabyte string is quarantined, not stored whole.
    evidence = pc.utf8_slice_codeunits(pc.if_else(pc.is_valid(bad["raw"]), bad["raw"], who), 0, MAX_EVIDENCE_CHARS)
    vehicle = bad["vehicle_id"] if "vehicle_id" in bad.column_names else pa.nulls(n, pa.string())
    quarantine = pa.Table.from_arrays([
        bad["fleet_id"], pc.utf8_slice_codeunits(vehicle, 0, MAX_ID_CHARS),
        when, pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64()),
        pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64()), bad["source"],
        evidence, reason.filter(is_bad),
    ], schema=QUARANTINE_SCHEMA)
    return Split(valid, quarantine, {k: v for k, v in nulled.items() if v})


def drivers_table(table: pa.Table) -> pa.Table:
    """The drivers snapshot: one row per (source, driver id); rows without an id are dropped (a
    driver nobody can be attributed to is no driver)."""
    t = table.select(DRIVER_CANDIDATE_SCHEMA.names).cast(DRIVER_CANDIDATE_SCHEMA)
    t = t.filter(pc.invert(pc.fill_null(_blank(t["driver_id"]), True)))
    seen: set[tuple[str, str]] = set()
    keep = []
    for s, d in zip(t["source"].to_pylist(), t["driver_id"].to_pylist()):
        keep.append((s, d) not in seen)
        seen.add((s, d))
    t = t.filter(pa.array(keep, pa.bool_()))
    return pa.Table.from_arrays([pc.dictionary_encode(t["fleet_id"]).cast(_DICT), t["driver_id"], t["name"],
                                 pc.dictionary_encode(t["source"]).cast(_SRC)], schema=DRIVER_SCHEMA)


# The committed schema of each raw dataset.
DATASET_SCHEMAS = {"pings": PING_SCHEMA, "quarantine": QUARANTINE_SCHEMA, "events": EVENT_SCHEMA,
                   "drivers": DRIVER_SCHEMA, "assignments": ASSIGNMENT_SCHEMA, "hos_logs": HOS_LOG_SCHEMA,
                   "hos_violations": HOS_VIOLATION_SCHEMA}
