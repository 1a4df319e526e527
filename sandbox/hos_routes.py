"""The fake TSPs' driver and hours-of-service routes, served from the fleet's crew (sandbox/crew.py).

Samsara (shapes of the official `samsara-api` SDK's models; tests/test_sdk_contract.py):
- `GET /fleet/drivers`: every driver, with the licence and phone fields a real account has
  (fleetlake must not keep them);
- `GET /fleet/driver-vehicle-assignments?filterBy=vehicles&startTime&endTime[&vehicleIds]`:
  logins overlapping the window (`assignmentType: HOS`; a team's two logins overlap),
  ASSIGNMENTS_A_PAGE a page (the route takes no `limit`);
- `GET /fleet/hos/logs?startTime&endTime[&driverIds]`: per driver, the duty statuses
  overlapping the window (`offDuty` between them), DRIVERS_A_PAGE drivers a page;
- `GET /fleet/hos/violations?startTime&endTime[&driverIds]`: violations that began in the
  window (its end included, as the SDK documents), grouped per driver, DRIVERS_A_PAGE drivers a page.
Motive (tests/contracts/motive_shapes.py): `GET /v1/users` (drivers and one fleet admin),
`GET /v1/logs?start_date&end_date` (one log per driver and home-terminal day, its duty-status
events), `GET /v1/hos_violations?start_date&end_date`, `GET /v1/driving_periods?start_date&end_date`
(at most 30 days; each stretch of driving with its driver, or `driver: null` when unidentified).

Everything is as the TSP knows it at the sandbox's now: a late log edit shows only once its time
has come, and a violation is computed from the logs as they stand then.

The fleet's quirks apply as on the GPS routes (docs/sandbox.md, "API quirks"): times with the home
terminal's offset and in whole seconds (`render_times`), Samsara's pages cut short and ending on an
empty page (sandbox/paging.py), optional fields left out, unknown fields added and whole floats sent
as integers (sandbox/record_quirks.py; what is optional is listed per route below).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from sandbox.crew import Crew, CrewDay, Driver
from sandbox.hos import Duty, Violation
from sandbox.hostile_hos import Fields, spoil
from sandbox.http import BadRequest, json_bytes, parse_date, parse_time, raw_json
from sandbox.paging import cursor_page, motive_list, samsara_limit
from sandbox.quirks import Quirks, home_zone, render_times
from sandbox.record_quirks import as_sent
from sandbox.simulator import DAY_S, Vehicle
from sandbox.world import SandboxWorld

# HOS logs and violations take no `limit`: "Samsara tunes the number of results on each page"
# (developers.samsara.com/docs/pagination); 3 drivers, so that tests page
DRIVERS_A_PAGE = 3
ASSIGNMENTS_A_PAGE = 512  # nor do assignments; the size of Samsara's routes that take one (default and maximum)
SAMSARA_STATUS = {"off_duty": "offDuty", "sleeper": "sleeperBed", "driving": "driving", "on_duty": "onDuty"}
SAMSARA_VIOLATION = {"driving_11": "shiftDrivingHours", "duty_14": "shiftHours", "break_30": "restbreakMissed",
                     "cycle_70": "cycleHoursOn"}
SAMSARA_DESCRIPTION = {"driving_11": "Shift Driving Limit (USA Property-11 hours)",
                       "duty_14": "Shift Duty Limit (USA Property-14 hours)",
                       "break_30": "Missed Rest Break (8 hours)", "cycle_70": "Cycle Limit (USA Property-70 hours)"}
MOTIVE_DRIVING_PERIOD_MAX_DAYS = 30


def samsara_driver_id(d: int) -> str:
    return str(900_000 + d)


def motive_driver_id(d: int) -> int:
    return 700_000 + d


def _times(world: SandboxWorld, fleet: str, ts_s: list[int], key: str, home: Vehicle | None = None) -> list[str]:
    """RFC 3339 times as the fleet's quirks render them: with `local_offsets`, in the zone of `home`'s
    terminal (the truck's, or a driver's home truck's: their log days are home-terminal days)."""
    quirks: Quirks = world.quirks[fleet]
    zone = home_zone(home.home.lat, home.home.lon) if quirks.local_offsets and home is not None else None
    return render_times(np.asarray(ts_s, np.int64) * 1000, quirks, key, zone)


def _spoiled(world: SandboxWorld, fleet: str, route: str, records: list[dict[str, Any]], f: Fields
             ) -> list[dict[str, Any]]:
    """The records as sent: some spoiled when the fleet's quirk `hostile_hos` is on (sandbox/hostile_hos.py)."""
    quirks: Quirks = world.quirks[fleet]
    return spoil(records, quirks.seed, route, f) if quirks.hostile_hos else records


def _wrapped(world: SandboxWorld, fleet: str, route: str, items: list[dict[str, Any]], key: str, f: Fields | None,
             optional: tuple[str, ...] = (), extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Motive's `[{key: record}]` with the records as sent: spoiled when the fleet is hostile, then
    dressed by its quirks (sandbox/record_quirks.py; `id` draws which records lose `optional`)."""
    quirks: Quirks = world.quirks[fleet]
    records = [i[key] for i in items]
    if f is not None:
        records = _spoiled(world, fleet, route, records, f)
    return [{key: as_sent(r, quirks, route, r.get("id"), optional, extra)} for r in records]


def _window(request: Request) -> tuple[int, int]:
    start = parse_time(request.query_params.get("startTime"), "startTime") // 1000
    end = parse_time(request.query_params.get("endTime"), "endTime") // 1000
    if end <= start:
        raise BadRequest("endTime must be after startTime")
    return start, end


def _ids(request: Request, name: str) -> set[str]:
    return {x.strip() for x in (request.query_params.get(name) or "").split(",") if x.strip()}


def with_off_duty(duties: list[Duty], start_s: int, end_s: int) -> list[Duty]:
    """The statuses with the time between them (inside [start_s, end_s)) as off duty."""
    out: list[Duty] = []
    t = start_s
    for d in duties:
        if d.start_s > t:
            out.append(Duty(t, d.start_s, "off_duty"))
        out.append(d)
        t = max(t, d.end_s)
    if end_s > t:
        out.append(Duty(t, end_s, "off_duty"))
    return out


def crew_days(crew: Crew, start_s: int, end_s: int, now_s: int, vehicle_ids: set[str] | None = None
              ) -> list[tuple[int, CrewDay]]:
    out = []
    for v in crew.sim.vehicles:
        if vehicle_ids and v.vehicle_id not in vehicle_ids:
            continue
        for day in crew.days_of(v, start_s - DAY_S, min(end_s, now_s)):
            out.append((v.index, crew.day_at(v, day, now_s)))
    return out


def visible_violations(crew: Crew, d: Driver, start_s: int, end_s: int, now_s: int) -> list[Violation]:
    from common.months import months_between

    out: list[Violation] = []
    end = min(end_s, now_s)
    for month in months_between(start_s * 1000, end * 1000):
        out.extend(x for x in crew.violations(d.index, month, now_s) if start_s <= x.start_s < end)
    return out


# --------------------------------------------------------------------------- Samsara
# Optional in the SDK's models and not kept by fleetlake: left out under `absent_optional`
# (samsara-api: Driver, DriverVehicleAssignmentV2ObjectResponseBody, HosLogEntry). Every field of a
# violation (HosViolationObjectResponseBody) is required: none is left out there.
DRIVER_OPTIONAL = ("username", "driverActivationStatus", "licenseNumber", "licenseState", "phone", "timezone",
                   "createdAtTime", "updatedAtTime", "staticAssignedVehicle")
ASSIGNMENT_OPTIONAL = ("assignedAtTime", "metadata")
LOG_OPTIONAL = ("remark", "codrivers", "logRecordedLocation")
# Fields the connector does not model, under `extra_fields` (the SDK's models allow any: extra="allow").
DRIVER_EXTRA = {"eldDayStartHour": 0, "eldPcEnabled": True, "locale": "us", "hosRulesetVersion": "2020-09"}
ASSIGNMENT_EXTRA = {"createdAtTime": "2020-01-01T00:00:00Z", "source": "driverApp"}
LOG_EXTRA = {"logMetaData": {"isCertified": True, "origin": "eld"}}
VIOLATION_EXTRA = {"region": "us", "isCertified": False}


class SamsaraHos:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world

    def _driver_ref(self, crew: Crew, d: int) -> dict[str, Any]:
        return {"id": samsara_driver_id(d), "name": crew.drivers[d].name}

    def _page(self, request: Request, fleet: str, route: str, items: list[Any], size: int
              ) -> tuple[list[Any], dict[str, Any]]:
        """A page as the fleet's TSP cuts it (sandbox/paging.py; `page_sizes` cuts it short)."""
        return cursor_page(request, items, size, self.world.quirks[fleet], route)

    def _response(self, data: list[Any], pagination: dict[str, Any]) -> Response:
        return raw_json(json_bytes({"data": data, "pagination": pagination}))

    async def drivers(self, request: Request, fleet: str) -> Response:
        crew = self.world.crew(fleet)
        quirks: Quirks = self.world.quirks[fleet]
        created = _times(self.world, fleet, [crew.sim.spec.history_start_s], "drivers")[0]
        items = []
        for d in crew.drivers:
            item: dict[str, Any] = {"id": samsara_driver_id(d.index), "name": d.name, "username": f"driver{d.index + 1}",
                    "driverActivationStatus": "active", "licenseNumber": f"D{1_000_000 + d.index * 7919}",
                    "licenseState": "TX", "phone": f"+1512555{d.index:04d}", "timezone": "America/Chicago",
                    "createdAtTime": created, "updatedAtTime": created}
            if d.role == "own":
                v = crew.sim.vehicles[d.home_vehicle]
                item["staticAssignedVehicle"] = {"id": v.vehicle_id, "name": v.name}
            items.append(item)
        page, pagination = self._page(request, fleet, "samsara/drivers", items, samsara_limit(request))
        page = [as_sent(x, quirks, "samsara/drivers", x["id"], DRIVER_OPTIONAL, DRIVER_EXTRA) for x in page]
        return self._response(page, pagination)

    async def assignments(self, request: Request, fleet: str) -> Response:
        if request.query_params.get("filterBy") not in ("vehicles", "drivers"):
            raise BadRequest("filterBy must be one of drivers, vehicles")
        start, end = _window(request)
        crew = self.world.crew(fleet)
        quirks: Quirks = self.world.quirks[fleet]
        now = self.world.clock.now_ms() // 1000
        wanted_d = _ids(request, "driverIds")
        items = []
        for vi, cd in crew_days(crew, start, end, now, _ids(request, "vehicleIds")):
            v = crew.sim.vehicles[vi]
            for a in cd.assignments:
                if a.start_s >= min(end, now) or a.end_s <= start:
                    continue
                if wanted_d and samsara_driver_id(a.driver) not in wanted_d:
                    continue
                open_ = a.end_s > now  # still logged in
                t = _times(self.world, fleet, [a.start_s, a.end_s, a.start_s], v.vehicle_id, v)
                item: dict[str, Any] = {"driver": self._driver_ref(crew, a.driver),
                                        "vehicle": {"id": v.vehicle_id, "name": v.name},
                                        "startTime": t[0], "isPassenger": False, "assignmentType": "HOS",
                                        "assignedAtTime": t[2], "metadata": {"sourceName": "Samsara Driver App"}}
                if not open_:
                    item["endTime"] = t[1]
                items.append(item)
        items.sort(key=lambda i: (i["vehicle"]["id"], i["startTime"]))
        page, pagination = self._page(request, fleet, "samsara/assignments", items, ASSIGNMENTS_A_PAGE)
        page = _spoiled(self.world, fleet, "samsara/assignments", page,
                        Fields("startTime", "assignmentType", "driver", "vehicle"))
        page = [as_sent(x, quirks, "samsara/assignments", (x["vehicle"]["id"] if isinstance(x.get("vehicle"), dict)
                                                             else None, str(x.get("startTime"))),
                        ASSIGNMENT_OPTIONAL, ASSIGNMENT_EXTRA) for x in page]
        return self._response(page, pagination)

    async def logs(self, request: Request, fleet: str) -> Response:
        start, end = _window(request)
        crew = self.world.crew(fleet)
        quirks: Quirks = self.world.quirks[fleet]
        now = self.world.clock.now_ms() // 1000
        wanted = _ids(request, "driverIds")
        drivers = [d for d in crew.drivers if not wanted or samsara_driver_id(d.index) in wanted]
        page, pagination = self._page(request, fleet, "samsara/logs", drivers, DRIVERS_A_PAGE)
        data = []
        for d in page:
            cut = min(end, now)
            duties = with_off_duty(crew.duties(d.index, start, cut, now), start, cut) if cut > start else []
            entries = []
            for x in duties:
                t = _times(self.world, fleet, [x.start_s, x.end_s], str(d.index), crew.sim.vehicles[d.home_vehicle])
                e: dict[str, Any] = {"hosStatusType": SAMSARA_STATUS[x.status], "logStartTime": t[0]}
                if x.end_s < now:
                    e["logEndTime"] = t[1]
                if x.vehicle is not None:
                    v = crew.sim.vehicles[x.vehicle]
                    e["vehicle"] = {"id": v.vehicle_id, "name": v.name}
                    # where the status changed: the sandbox places it at the truck's home terminal
                    e["logRecordedLocation"] = {"latitude": round(v.home.lat, 4), "longitude": round(v.home.lon, 4)}
                    team = codrivers(crew, d, x.vehicle)
                    if team:
                        e["codrivers"] = [self._driver_ref(crew, c) for c in team]
                if x.status in REMARKS:
                    e["remark"] = REMARKS[x.status]
                entries.append(e)
            entries = _spoiled(self.world, fleet, "samsara/logs", entries,
                               Fields("logStartTime", "hosStatusType", None, "vehicle"))
            entries = [as_sent(e, quirks, "samsara/logs", (d.index, str(e.get("logStartTime"))), LOG_OPTIONAL,
                               LOG_EXTRA) for e in entries]
            data.append({"driver": self._driver_ref(crew, d.index), "hosLogs": entries})
        return self._response(data, pagination)

    async def violations(self, request: Request, fleet: str) -> Response:
        start, end = _window(request)
        crew = self.world.crew(fleet)
        quirks: Quirks = self.world.quirks[fleet]
        now = self.world.clock.now_ms() // 1000
        wanted = _ids(request, "driverIds")
        drivers = [d for d in crew.drivers if not wanted or samsara_driver_id(d.index) in wanted]
        page, pagination = self._page(request, fleet, "samsara/violations", drivers, DRIVERS_A_PAGE)
        data = []
        for d in page:
            off = crew.sim.vehicles[d.home_vehicle].home.utc_offset_h * 3600
            found = []
            # "A violation will be returned if its violationStartTime falls within this datetime range
            # (inclusive of startTime and endTime)" (the SDK's get_hos_violations): times are whole seconds
            for x in visible_violations(crew, d, start, end + 1, now):
                day0 = (x.start_s + off) // DAY_S * DAY_S - off
                t = _times(self.world, fleet, [x.start_s, day0, day0 + DAY_S], str(d.index), crew.sim.vehicles[d.home_vehicle])
                found.append({"type": SAMSARA_VIOLATION[x.kind], "description": SAMSARA_DESCRIPTION[x.kind],
                              "violationStartTime": t[0], "durationMs": x.duration_s * 1000,
                              "driver": self._driver_ref(crew, d.index), "day": {"startTime": t[1], "endTime": t[2]}})
            found = _spoiled(self.world, fleet, "samsara/violations", found,
                             Fields("violationStartTime", "type", "driver", None, number="durationMs", share=2))
            found = [as_sent(v, quirks, "samsara/violations", None, extra=VIOLATION_EXTRA) for v in found]
            data.append({"violations": found})
        return self._response(data, pagination)


REMARKS = {"on_duty": "Pre/post-trip inspection", "sleeper": "Team driving: sleeper berth"}


def codrivers(crew: Crew, d: Driver, vehicle: int) -> list[int]:
    """The other driver of a team truck, for a team member in it (the crew's `own` and `partner` drivers)."""
    if d.role not in ("own", "partner") or d.home_vehicle != vehicle:
        return []
    return [o.index for o in crew.drivers
            if o.index != d.index and o.home_vehicle == vehicle and o.role in ("own", "partner")]


# --------------------------------------------------------------------------- Motive
# Motive's reference marks no field optional and shows absent values as null, except a driving
# period's `status` ("The status of the driving period (if available)", developer.gomotive.com/
# reference/fetch-a-list-of-the-vehicles-driving-periods): the only field `absent_optional` leaves out.
PERIOD_OPTIONAL = ("status",)
# Fields the connector does not model, under `extra_fields`: a log's documented `metric_units`,
# `time_zone`, `driver_signed_at` ([LOGS]), a period's `source` (1: recorded by the vehicle gateway,
# the same page), and fields of our own on users, events and violations (Motive adds fields over time).
USER_EXTRA = {"time_zone": "Central Time (US & Canada)", "duty_status": "off_duty", "eld_mode": "logs"}
LOG_EXTRA_M = {"metric_units": False, "time_zone": "Central Time (US & Canada)", "driver_signed_at": None}
EVENT_EXTRA = {"notes": "", "origin": "driver"}
VIOLATION_EXTRA_M = {"rule_set": "70_8"}
PERIOD_EXTRA = {"source": 1}
def _dates(request: Request, max_days: int | None = None) -> tuple[date, date]:
    a = parse_date(request.query_params.get("start_date"), "start_date")
    b = parse_date(request.query_params.get("end_date"), "end_date")
    if b < a:
        raise BadRequest("end_date must not be before start_date")
    if max_days is not None and (b - a).days + 1 > max_days:
        raise BadRequest(f"the date range may span at most {max_days} days")
    return a, b


def _utc_s(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY_S


class MotiveHos:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world

    def _user(self, crew: Crew, d: int) -> dict[str, Any]:
        first, last = crew.drivers[d].name.split(" ", 1)
        return {"id": motive_driver_id(d), "first_name": first, "last_name": last}

    async def users(self, request: Request, fleet: str) -> Response:
        crew = self.world.crew(fleet)
        items = [{"user": {**self._user(crew, d.index), "role": "driver", "status": "active",
                           "email": f"driver{d.index + 1}@example.com", "phone": f"512555{d.index:04d}",
                           "drivers_license_number": f"D{1_000_000 + d.index * 7919}",
                           "drivers_license_state": "TX"}} for d in crew.drivers]
        items.append({"user": {"id": 699_999, "first_name": "Fleet", "last_name": "Admin", "role": "fleet_admin",
                               "status": "active", "email": "admin@example.com"}})
        return motive_list("users", _wrapped(self.world, fleet, "motive/users", items, "user", None,
                                             extra=USER_EXTRA), request)

    async def logs(self, request: Request, fleet: str) -> Response:
        a, b = _dates(request)
        crew = self.world.crew(fleet)
        now = self.world.clock.now_ms() // 1000
        wanted = _ids(request, "driver_ids")
        items = []
        for d in crew.drivers:
            if wanted and str(motive_driver_id(d.index)) not in wanted:
                continue
            off = crew.sim.vehicles[d.home_vehicle].home.utc_offset_h * 3600
            day = a
            while day <= b:
                lo = _utc_s(day) - off
                hi = min(lo + DAY_S, now)
                if hi > lo:
                    duties = crew.duties(d.index, lo, hi, now)
                    if duties:
                        items.append({"log": self._log(crew, fleet, d, day, with_off_duty(duties, lo, hi), now)})
                day += timedelta(days=1)
        return motive_list("logs", _wrapped(self.world, fleet, "motive/logs", items, "log", None, extra=LOG_EXTRA_M),
                           request)

    def _log(self, crew: Crew, fleet: str, d: Driver, day: date, duties: list[Duty], now: int) -> dict[str, Any]:
        events = []
        for x in duties:
            t = _times(self.world, fleet, [x.start_s, x.end_s], str(d.index), crew.sim.vehicles[d.home_vehicle])
            ev: dict[str, Any] = {"id": x.start_s * 10 + d.index % 10, "type": x.status, "start_time": t[0],
                                  "end_time": t[1] if x.end_s < now else None,
                                  "duration": (x.end_s - x.start_s) if x.end_s < now else None}
            if x.vehicle is not None:
                v = crew.sim.vehicles[x.vehicle]
                ev["vehicle"] = {"id": int(v.vehicle_id), "number": v.name}
            events.append({"event": ev})
        return {"id": motive_driver_id(d.index) * 100_000 + (day - date(2000, 1, 1)).days, "date": day.isoformat(),
                "driver": self._user(crew, d.index), "cycle": "70_8",
                "events": _wrapped(self.world, fleet, "motive/logs", events, "event",
                                   Fields("start_time", "type", None, "vehicle"), extra=EVENT_EXTRA)}

    async def violations(self, request: Request, fleet: str) -> Response:
        a, b = _dates(request)
        crew = self.world.crew(fleet)
        now = self.world.clock.now_ms() // 1000
        items = []
        for d in crew.drivers:
            for x in visible_violations(crew, d, _utc_s(a), _utc_s(b) + DAY_S, now):
                t = _times(self.world, fleet, [x.start_s, x.start_s + x.duration_s], str(d.index),
                           crew.sim.vehicles[d.home_vehicle])
                items.append({"hos_violation": {"id": x.start_s * 100 + d.index % 100, "type": x.kind,
                                                "name": x.kind, "start_time": t[0], "end_time": t[1],
                                                "user": self._user(crew, d.index)}})
        items = _wrapped(self.world, fleet, "motive/violations", items, "hos_violation",
                         Fields("start_time", "type", "user", None, end="end_time", share=2),
                         extra=VIOLATION_EXTRA_M)
        return motive_list("hos_violations", items, request)

    async def driving_periods(self, request: Request, fleet: str) -> Response:
        a, b = _dates(request, MOTIVE_DRIVING_PERIOD_MAX_DAYS)
        lo, hi = _utc_s(a), _utc_s(b) + DAY_S
        crew = self.world.crew(fleet)
        now = self.world.clock.now_ms() // 1000
        items = []
        for vi, cd in crew_days(crew, lo, hi, now):
            v = crew.sim.vehicles[vi]
            for s, drv in zip(cd.stretches, cd.driven_by):
                if not (lo <= s.start_s < min(hi, now)) or s.end_s > now:
                    continue
                t = _times(self.world, fleet, [s.start_s, s.end_s], v.vehicle_id, v)
                items.append({"driving_period": {
                    "id": s.start_s * 100 + vi % 100, "type": "driving", "start_time": t[0], "end_time": t[1],
                    "duration": s.end_s - s.start_s, "status": "complete",
                    "driver": self._user(crew, drv) if drv is not None else None,
                    "vehicle": {"id": int(v.vehicle_id), "number": v.name}}})
        items.sort(key=lambda i: (i["driving_period"]["start_time"], i["driving_period"]["id"]))
        items = _wrapped(self.world, fleet, "motive/driving_periods", items, "driving_period",
                         Fields("start_time", "type", "driver", "vehicle"), PERIOD_OPTIONAL, PERIOD_EXTRA)
        return motive_list("driving_periods", items, request)
