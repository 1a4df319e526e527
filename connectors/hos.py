"""Drivers' logins and hours of service from Samsara and Motive, as candidate rows.

The shapes follow the official `samsara-api` SDK's models (HosLogsResponse,
HosViolationsGetHosViolationsResponseBody, DriverVehicleAssignmentsV2...ResponseBody) and
Motive's public reference (tests/contracts/motive_shapes.py); sources in docs/sandbox.md.

- Samsara: assignments from `/fleet/driver-vehicle-assignments?filterBy=vehicles` (a team's two
  logins overlap; attribution decides), duty statuses from `/fleet/hos/logs` (an entry without
  `logEndTime` still runs), violations from `/fleet/hos/violations` (types mapped to the FMCSA rule
  they enforce; any other kept verbatim as `other`). Cursor pages, as everywhere in Samsara.
- Motive: a driving period (`/v1/driving_periods`, at most 30 days a request) with a driver is an
  assignment for its span: Motive ties driving to a driver there, and `driver: null` is its
  unidentified driving; duty statuses are the events of `/v1/logs`; violations `/v1/hos_violations`.
  Numbered pages (100 a page), inclusive dates: results are cut back to the half-open window.

Only ids and the status or type travel on: no names, licences or phones (docs/storage.md).

A page is decoded in one typed pass; a page that fails it (a mistyped value anywhere) is decoded
again record by record, as GPS pages are (connectors.normalize): a record that does not fit its
shape is read field by field (`Loose`), its unusable values become null with the record's JSON kept
as evidence (`raw`), and validation (partitions.schema.split_valid_hos) quarantines the record or
nulls the field. One hostile record costs itself, never its page nor the fleet's pull.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from connectors.normalize import Loose, convert_each, decode_or_salvage, raw_text, time_column
from connectors.pagination import Cursor, PageNumbers, cursor_pages, numbered_pages, salvaged_pagination
from partitions.schema import (
    ASSIGNMENT_CANDIDATE_SCHEMA,
    FUTURE_SLACK_MS,
    HOS_LOG_CANDIDATE_SCHEMA,
    HOS_VIOLATION_CANDIDATE_SCHEMA,
    MIN_TS_MS,
)

DAY_MS = 86_400_000
SAMSARA_STATUS = {"offDuty": "off_duty", "sleeperBed": "sleeper", "driving": "driving", "onDuty": "on_duty",
                  "yardMove": "yard_move", "personalConveyance": "personal_conveyance"}
# Samsara's violation types (the SDK's HosViolationObjectResponseBodyType) for the US property rules.
SAMSARA_VIOLATION = {"shiftDrivingHours": "driving_11", "shiftHours": "duty_14", "restbreakMissed": "break_30",
                     "cycleHoursOn": "cycle_70"}
MOTIVE_STATUS = {"off_duty": "off_duty", "sleeper": "sleeper", "driving": "driving", "on_duty": "on_duty",
                 "yard_move": "yard_move", "personal_conveyance": "personal_conveyance"}
MOTIVE_VIOLATIONS = ("driving_11", "duty_14", "break_30", "cycle_60", "cycle_70")
MOTIVE_PERIOD_DAYS = 30  # inclusive dates: a window of 29 days spans at most 30 of them


class _Ref(msgspec.Struct, frozen=True):
    id: str | int | None = None


class _SAssignment(msgspec.Struct):
    driver: _Ref = _Ref()
    vehicle: _Ref = _Ref()
    startTime: str | None = None
    endTime: str | None = None
    assignmentType: str | None = None


class _SAssignmentPage(msgspec.Struct):
    data: list[_SAssignment]
    pagination: Cursor


class _SLog(msgspec.Struct):
    hosStatusType: str | None = None
    logStartTime: str | None = None
    logEndTime: str | None = None
    vehicle: _Ref | None = None


class _SDriverLogs(msgspec.Struct):
    driver: _Ref | None = None
    hosLogs: list[_SLog] | None = None


class _SLogPage(msgspec.Struct):
    data: list[_SDriverLogs]
    pagination: Cursor


class _SViolation(msgspec.Struct):
    type: str | None = None
    violationStartTime: str | None = None
    durationMs: float | None = None
    driver: _Ref = _Ref()


class _SViolations(msgspec.Struct):
    violations: list[_SViolation] = []


class _SViolationPage(msgspec.Struct):
    data: list[_SViolations]
    pagination: Cursor


class _MPeriod(msgspec.Struct):
    start_time: str | None = None
    end_time: str | None = None
    type: str | None = None
    driver: _Ref | None = None
    vehicle: _Ref | None = None


class _MPeriodItem(msgspec.Struct):
    driving_period: _MPeriod


class _MPeriodPage(msgspec.Struct):
    driving_periods: list[_MPeriodItem]
    pagination: PageNumbers


class _MEvent(msgspec.Struct):
    type: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    vehicle: _Ref | None = None


class _MEventItem(msgspec.Struct):
    event: _MEvent


class _MLog(msgspec.Struct):
    driver: _Ref = _Ref()
    events: list[_MEventItem] = []


class _MLogItem(msgspec.Struct):
    log: _MLog


class _MLogLoose(msgspec.Struct):
    """A log of a salvaged page: its events are converted one by one (`_events`)."""
    driver: Any = None
    events: Any = None


def _events(log: Any) -> list[Any]:
    """A Motive log's duty-status events: typed, or each read on its own from a salvaged log."""
    if isinstance(log, _MLog):
        return [e.event for e in log.events]
    items = log.events if isinstance(log.events, list) else []
    return convert_each([x.get("event") if isinstance(x, dict) else x for x in items], _MEvent)


class _MLogPage(msgspec.Struct):
    logs: list[_MLogItem]
    pagination: PageNumbers


class _MViolation(msgspec.Struct):
    type: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    user: _Ref = _Ref()


class _MViolationItem(msgspec.Struct):
    hos_violation: _MViolation


class _MViolationPage(msgspec.Struct):
    hos_violations: list[_MViolationItem]
    pagination: PageNumbers


def _id(ref: Any) -> str | None:
    """An id from a reference ({"id": ...}): a string or integer; anything else is no id."""
    v = ref.id if isinstance(ref, _Ref) else ref.get("id") if isinstance(ref, dict) else None
    return str(v) if isinstance(v, str | int) and not isinstance(v, bool) and str(v) else None


def _label(v: Any) -> str | None:
    """A TSP label (status, type): "" when absent, None when sent but not text (validation nulls it)."""
    return "" if v is None else v if isinstance(v, str) else None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _evidence(records: list[Any], raws: list[str | None], sent: list[Any], got: list[Any]) -> None:
    """Keep a record's JSON as evidence where a value was sent but read as nothing."""
    for i, (a, b) in enumerate(zip(sent, got)):
        if a is not None and b is None and raws[i] is None:
            raws[i] = raw_text(records[i])


def _loose_raws(records: list[Any]) -> list[str | None]:
    """Evidence for records that are not even objects (they are quarantined whatever they hold)."""
    return [raw_text(r) if isinstance(r, Loose) and r.broken else None for r in records]


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


def _times(values: list[str | None], raws: list[str | None], records: list[Any]) -> pa.Array:
    bad = [False] * len(values)
    col = time_column(values, bad)
    for i, b in enumerate(bad):
        if b and raws[i] is None:
            raws[i] = raw_text(records[i])
    return col


def clip(table: pa.Table, start_ms: int, end_ms: int, now_ms: int) -> pa.Table:
    """Intervals cut to [start_ms, end_ms): each month keeps only its own piece. An interval still
    open (no end) stays open in the month that holds now, and ends at the month's end before it.

    An interval whose start is implausible (none, before 2000, ahead of now) is left as sent:
    validation quarantines it with the reason, where cutting it would hide the TSP's error."""
    if not table.num_rows:
        return table
    s = pc.cast(table["start_ts"], pa.int64())
    e = pc.cast(table["end_ts"], pa.int64())
    odd = pc.fill_null(pc.or_kleene(pc.is_null(s), _implausible(s, now_ms)), True)
    keep = pc.or_kleene(odd, pc.and_(pc.less(s, end_ms), pc.or_kleene(pc.is_null(e), pc.greater(e, start_ms))))
    table = table.filter(pc.fill_null(keep, True))
    s = pc.cast(table["start_ts"], pa.int64())
    e = pc.cast(table["end_ts"], pa.int64())
    odd = pc.fill_null(pc.or_kleene(pc.is_null(s), _implausible(s, now_ms)), True)
    s2 = pc.if_else(odd, s, pc.if_else(pc.less(s, start_ms), start_ms, s))
    open_here = pa.scalar(end_ms > now_ms)
    e2 = pc.if_else(odd, e, pc.if_else(pc.is_null(e), pc.if_else(open_here, pa.scalar(None, pa.int64()),
                                                                   pa.scalar(end_ms)),
                                       pc.if_else(pc.greater(e, end_ms), end_ms, e)))
    ts = table.schema.field("start_ts").type
    table = table.set_column(table.schema.get_field_index("start_ts"), "start_ts", pc.cast(s2, pa.int64()).cast(ts))
    return table.set_column(table.schema.get_field_index("end_ts"), "end_ts", pc.cast(e2, pa.int64()).cast(ts))


def _table(schema: pa.Schema, cols: dict[str, Any]) -> pa.Table:
    n = len(next(iter(cols.values())))
    return pa.Table.from_arrays([cols[f.name] if isinstance(cols.get(f.name), pa.Array) else
                                 pa.array(cols[f.name] if f.name in cols else [None] * n, f.type) for f in schema],
                                schema=schema)


class SamsaraHos:
    """The HOS routes of one Samsara connector (its client and fleet)."""

    def __init__(self, http: Any, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id

    def _pages(self, path: str, params: dict[str, Any], decoder: msgspec.json.Decoder, what: str,
               items: Callable[[Any], list[Any]], salvage: Callable[[dict[str, Any]], list[Any]]) -> list[Any]:
        """Every page's items; a page that fails the typed decode gives `salvage(body)` instead."""
        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            r = self.http.get(path, {**params, **({"after": cursor} if cursor else {})})
            page, body = decode_or_salvage("samsara", decoder, r.content, what)
            if page is not None:
                return items(page), page.pagination.next()
            return salvage(body), salvaged_pagination("samsara", body, Cursor, what).next()

        return [x for page in cursor_pages("samsara", fetch) for x in page]

    def assignments(self, start_ms: int, end_ms: int) -> pa.Table:
        rows = self._pages("/fleet/driver-vehicle-assignments",
                           # no `limit`: the route takes none (the SDK's get_driver_vehicle_assignments)
                           {"filterBy": "vehicles", "startTime": _rfc3339(start_ms), "endTime": _rfc3339(end_ms)},
                           msgspec.json.Decoder(_SAssignmentPage), "driver-vehicle assignments",
                           lambda p: p.data, lambda b: convert_each(b.get("data"), _SAssignment))
        raws = _loose_raws(rows)
        vehicles, drivers = [_id(a.vehicle) for a in rows], [_id(a.driver) for a in rows]
        _evidence(rows, raws, [a.vehicle for a in rows], vehicles)
        _evidence(rows, raws, [a.driver for a in rows], drivers)
        return _table(ASSIGNMENT_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(rows), "vehicle_id": vehicles, "driver_id": drivers,
            "start_ts": _times([a.startTime for a in rows], raws, rows),
            "end_ts": _times([a.endTime for a in rows], raws, rows),
            "tsp_kind": [_label(a.assignmentType) for a in rows], "source": ["samsara"] * len(rows), "raw": raws})

    def hos_logs(self, start_ms: int, end_ms: int) -> pa.Table:
        rows = self._pages("/fleet/hos/logs", {"startTime": _rfc3339(start_ms), "endTime": _rfc3339(end_ms)},
                           msgspec.json.Decoder(_SLogPage), "HOS logs",
                           lambda p: [(d.driver, x) for d in p.data for x in d.hosLogs or []], _salvage_logs)
        logs = [x for _, x in rows]
        raws = _loose_raws(logs)
        drivers = [_id(d) for d, _ in rows]
        _evidence(logs, raws, [d for d, _ in rows], drivers)
        labels = [_label(x.hosStatusType) for x in logs]
        return _table(HOS_LOG_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(rows), "driver_id": drivers,
            "vehicle_id": [_id(x.vehicle) for x in logs],  # optional: an unusable one is none
            "start_ts": _times([x.logStartTime for x in logs], raws, logs),
            "end_ts": _times([x.logEndTime for x in logs], raws, logs),
            "status": [SAMSARA_STATUS.get(t or "", "other") for t in labels],
            "tsp_status": labels, "source": ["samsara"] * len(rows), "raw": raws})

    def hos_violations(self, start_ms: int, end_ms: int) -> pa.Table:
        rows = self._pages("/fleet/hos/violations", {"startTime": _rfc3339(start_ms), "endTime": _rfc3339(end_ms)},
                           msgspec.json.Decoder(_SViolationPage), "HOS violations",
                           lambda p: [v for g in p.data for v in g.violations],
                           lambda b: [v for g in _objects(b.get("data"))
                                      for v in convert_each(g.get("violations"), _SViolation)])
        raws = _loose_raws(rows)
        drivers = [_id(v.driver) for v in rows]
        _evidence(rows, raws, [v.driver for v in rows], drivers)
        durations = [_number(v.durationMs) for v in rows]
        _evidence(rows, raws, [v.durationMs for v in rows], durations)
        labels = [_label(v.type) for v in rows]
        table = _table(HOS_VIOLATION_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(rows), "driver_id": drivers,
            "ts": _times([v.violationStartTime for v in rows], raws, rows),
            "kind": [SAMSARA_VIOLATION.get(t or "", "other") for t in labels], "tsp_kind": labels,
            "duration_s": [d / 1000 if d is not None else None for d in durations],
            "source": ["samsara"] * len(rows), "raw": raws})
        return inside(table, "ts", start_ms, end_ms, now_ms=end_ms)


def inside(table: pa.Table, col: str, start_ms: int, end_ms: int, now_ms: int) -> pa.Table:
    """The rows whose time is in [start_ms, end_ms), and those whose time is implausible (none,
    before 2000, ahead of now): validation quarantines them with the reason, not this cut."""
    ts = pc.cast(table[col], pa.int64())
    keep = pc.or_kleene(pc.or_kleene(pc.is_null(ts), _implausible(ts, now_ms)),
                        pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms)))
    return table.filter(pc.fill_null(keep, True))


def _implausible(ms: Any, now_ms: int) -> Any:
    return pc.or_(pc.less(ms, MIN_TS_MS), pc.greater(ms, now_ms + FUTURE_SLACK_MS))


def _objects(items: Any) -> list[dict[str, Any]]:
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _salvage_logs(body: dict[str, Any]) -> list[tuple[Any, Any]]:
    """A Samsara HOS logs page read record by record: (the driver reference, each log entry)."""
    return [(g.get("driver"), x) for g in _objects(body.get("data")) for x in convert_each(g.get("hosLogs"), _SLog)]


class MotiveHos:
    """The HOS routes of one Motive connector (its client and fleet)."""

    def __init__(self, http: Any, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id

    def _pages(self, path: str, params: dict[str, Any], decoder: msgspec.json.Decoder, what: str,
               items: Callable[[Any], list[Any]], key: str, inner: str, shape: type[Any]) -> list[Any]:
        """Every page's items; a page that fails the typed decode is read record by record: each
        `{key: [{inner: record}]}` converted to `shape` or kept Loose."""
        def fetch(page_no: int) -> tuple[list[Any], int, PageNumbers | None]:
            r = self.http.get(path, {**params, "per_page": 100, "page_no": page_no})
            page, body = decode_or_salvage("motive", decoder, r.content, what)
            if page is not None:
                got = items(page)
                return got, len(got), page.pagination
            listed = body.get(key) if isinstance(body.get(key), list) else []
            got = convert_each([x.get(inner) if isinstance(x, dict) else x for x in listed], shape)
            return got, len(got), salvaged_pagination("motive", body, PageNumbers, what)

        return [x for page in numbered_pages("motive", fetch) for x in page]

    def _dated(self, start_ms: int, end_ms: int) -> dict[str, str]:
        return {"start_date": _date(start_ms), "end_date": _date(end_ms - 1)}

    def assignments(self, start_ms: int, end_ms: int) -> pa.Table:
        periods: list[_MPeriod] = []
        t = start_ms
        while t < end_ms:  # at most 31 days a request
            hi = min(end_ms, t + (MOTIVE_PERIOD_DAYS - 1) * DAY_MS)
            periods += self._pages("/v1/driving_periods", self._dated(t, hi), msgspec.json.Decoder(_MPeriodPage),
                                   "driving periods", lambda p: [i.driving_period for i in p.driving_periods],
                                   "driving_periods", "driving_period", _MPeriod)
            t = hi
        # driver null: unidentified driving (a record that is no object at all is kept, to be quarantined)
        mine = [p for p in periods if p.driver is not None or isinstance(p, Loose) and p.broken]
        raws = _loose_raws(mine)
        vehicles, drivers = [_id(p.vehicle) for p in mine], [_id(p.driver) for p in mine]
        _evidence(mine, raws, [p.vehicle for p in mine], vehicles)
        _evidence(mine, raws, [p.driver for p in mine], drivers)
        labels = [_label(p.type) for p in mine]
        table = _table(ASSIGNMENT_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(mine), "vehicle_id": vehicles, "driver_id": drivers,
            "start_ts": _times([p.start_time for p in mine], raws, mine),
            "end_ts": _times([p.end_time for p in mine], raws, mine),
            "tsp_kind": [None if t is None else "driving_period:" + t for t in labels],
            "source": ["motive"] * len(mine), "raw": raws})
        return _dedup_periods(table)

    def hos_logs(self, start_ms: int, end_ms: int) -> pa.Table:
        logs = self._pages("/v1/logs", self._dated(start_ms, end_ms), msgspec.json.Decoder(_MLogPage), "HOS logs",
                           lambda p: [i.log for i in p.logs], "logs", "log", _MLogLoose)
        rows = [(lg.driver, e) for lg in logs for e in _events(lg)]
        evs = [e for _, e in rows]
        raws = _loose_raws(evs)
        drivers = [_id(d) for d, _ in rows]
        _evidence(evs, raws, [d for d, _ in rows], drivers)
        labels = [_label(e.type) for e in evs]
        return _table(HOS_LOG_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(rows), "driver_id": drivers,
            "vehicle_id": [_id(e.vehicle) for e in evs],  # optional: an unusable one is none
            "start_ts": _times([e.start_time for e in evs], raws, evs),
            "end_ts": _times([e.end_time for e in evs], raws, evs),
            "status": [MOTIVE_STATUS.get(t or "", "other") for t in labels],
            "tsp_status": labels, "source": ["motive"] * len(rows), "raw": raws})

    def hos_violations(self, start_ms: int, end_ms: int) -> pa.Table:
        rows = self._pages("/v1/hos_violations", self._dated(start_ms, end_ms),
                           msgspec.json.Decoder(_MViolationPage), "HOS violations",
                           lambda p: [i.hos_violation for i in p.hos_violations], "hos_violations", "hos_violation",
                           _MViolation)
        raws = _loose_raws(rows)
        drivers = [_id(v.user) for v in rows]
        _evidence(rows, raws, [v.user for v in rows], drivers)
        start = _times([v.start_time for v in rows], raws, rows)
        # The end only gives the duration (optional): an unusable one nulls it, with the evidence.
        end_raws: list[str | None] = [None] * len(rows)
        end = _times([v.end_time for v in rows], end_raws, rows)
        raws = [a or b for a, b in zip(raws, end_raws)]
        dur = pc.divide(pc.cast(pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64())), pa.float64()),
                        1000.0)
        labels = [_label(v.type) for v in rows]
        table = _table(HOS_VIOLATION_CANDIDATE_SCHEMA, {
            "fleet_id": [self.fleet_id] * len(rows), "driver_id": drivers, "ts": start,
            "kind": [t if t in MOTIVE_VIOLATIONS else "other" for t in labels],
            "tsp_kind": labels, "duration_s": dur, "source": ["motive"] * len(rows), "raw": raws})
        return inside(table, "ts", start_ms, end_ms, now_ms=end_ms)


def _dedup_periods(table: pa.Table) -> pa.Table:
    """Windows of 31 days overlap at their edges by whole days: a period seen twice counts once."""
    if not table.num_rows:
        return table
    idx = table.group_by(["vehicle_id", "driver_id", "start_ts"], use_threads=False).aggregate([]).num_rows
    if idx == table.num_rows:
        return table
    keys = set()
    keep = []
    for row in zip(*(table[c].to_pylist() for c in ("vehicle_id", "driver_id", "start_ts"))):
        keep.append(row not in keys)
        keys.add(row)
    return table.filter(pa.array(keep))

