"""What Motive's public API reference says its responses look like, one fact per line with its source.

Motive publishes no SDK or machine-readable schema, so this module is the contract the sandbox's
Motive API is tested against (tests/test_motive_contract.py). It is written from the public
reference, not from our sandbox or connector; where the reference is silent we say so and
accept both readings (the connector must be right either way).

Sources (retrieved 2026-11):
  [PAG] https://developer.gomotive.com/reference/pagination
        "All GET requests will limit the number of results": per_page default 25, maximum 100;
        page_no default 1; every response carries {"pagination": {"per_page", "page_no", "total"}}.
  [LOC] https://developer-docs.gomotive.com/reference/fetch-a-vehicles-location-using-its-id-v3
        GET /v3/vehicle_locations/{id}?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD; the range must not
        exceed 3 months; records carry `odometer` (and `true_odometer`). The page does not say
        whether this route pages: both a paged and an unpaged answer are accepted below.
  [VEH] https://developer.gomotive.com/reference/list-all-the-company-vehicles
        GET /v1/vehicles: items wrapped as {"vehicle": {...}}; id (number), number (string),
        status, vin, make, model, ...
  [USR] https://developer-docs.gomotive.com/reference/tms-step-1
        GET /v1/users: role is one of driver, fleet_user, admin.
  [DPE] https://developer.gomotive.com/docs/step-2-extract-the-driver-performance-events
        GET /v2/driver_performance_events: items wrapped as {"driver_performance_event": {...}}
        with id, type, start_time/end_time like "2020-01-27T11:25:51Z" (whole seconds), lat, lon,
        end_speed, end_bearing; types include hard_accel, hard_brake, hard_corner, crash,
        seat_belt_violation, tailgating, cell_phone, stop_sign_violation, distraction,
        unsafe_lane_change, drowsiness, road_facing_cam_obstruction, driver_facing_cam_obstruction,
        forward_collision_warning.
  [USR2] https://developer.gomotive.com/reference/users-overview
        "User can have one the following three roles: driver, fleet_admin, or fleet_user"; a driver's
        HOS cycle 70_8 lists the violations duty_16 duty_14 driving_11 break_30 cycle_70, 60_7 the
        same with cycle_60. (It names fleet_admin where [USR] says admin: both are accepted.)
  [LOGS] https://developer-docs.gomotive.com/reference/list-the-hours-of-service-hos-logs-of-the-drivers
        GET /v1/logs: items wrapped as {"log": {...}} with id (integer), date, total_miles (Integer),
        metric_units (Boolean), driver_signed_at, time_zone, cycle, driver_first_name/last_name, ...;
        the statuses of the `status` filter: all, compliant, hos, form_and_manner, missing_dvirs. Each log carries its duty-status
        events. The page does not spell out the event fields: we expect {"event": {id, type,
        start_time, end_time|null, duration|null}} with type one of the duty statuses Motive's
        create-an-event page names (on_duty, off_duty; driving, sleeper from the log graph).
  [VIO] https://developer-docs.gomotive.com/reference/fetch-a-list-of-all-the-drivers-with-hours-of-service-hos-violations
        GET /v1/hos_violations (filter `violation_types`): break_30, driving_10, driving_11, duty_12,
        duty_14, duty_15, duty_16, cycle_60, cycle_70, cycle_60_p, cycle_70_p, canada_*. The item
        fields are not listed there: we expect {"hos_violation": {id, type, start_time, end_time,
        user: {id, ...}}}.
  [DRP] https://developer.gomotive.com/reference/driving-periods-overview and the changelog
        "New parameter added to GET Driving Periods endpoint" (2025-04-23): GET /v1/driving_periods,
        types driving, personal conveyance, yard move; a period may carry no driver (unidentified;
        `assigned_to_driver=false` filters them); the date range is at most 30 days (developer
        forum, "Has there been a change in the date range allowed in driving periods?").
  [DRP2] https://developer.gomotive.com/reference/fetch-a-list-of-the-vehicles-driving-periods
        items wrapped as {"driving_period": {...}}: id (Integer), start_time, end_time, status
        "(if available)", type; `source` 1 (recorded by the Vehicle Gateway), 2 (an edit by a user
        other than the driver), 3 (assumed from the unidentified driver profile). The page does not
        say how the driver and vehicle are given: we expect {id, first_name, last_name} and
        {id, number} as on the other routes.
  [UNIT] Motive reports metric values by default (speed km/h, odometer km) unless the company
        uses imperial units (`metric_units` on the vehicle, [VEH]).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PER_PAGE = 25  # [PAG]
MAX_PER_PAGE = 100  # [PAG]
MAX_RANGE_MONTHS = 3  # [LOC]
# [DPE]: the types listed by the reference; a response may carry others (it says "such as").
PERFORMANCE_EVENT_TYPES = frozenset({
    "hard_accel", "hard_brake", "hard_corner", "crash", "seat_belt_violation", "tailgating", "cell_phone",
    "stop_sign_violation", "distraction", "unsafe_lane_change", "drowsiness", "road_facing_cam_obstruction",
    "driver_facing_cam_obstruction", "forward_collision_warning"})


class _Shape(BaseModel):
    # Unknown fields are allowed: Motive adds fields over time ([changelog] developer.gomotive.com/changelog).
    model_config = ConfigDict(extra="allow")


def _rfc3339(value: str) -> str:
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # raises on anything but an RFC 3339 time
    return value


class Pagination(_Shape):  # [PAG]
    per_page: int = Field(ge=1, le=MAX_PER_PAGE)
    page_no: int = Field(ge=1)
    total: int = Field(ge=0)


class VehicleLocation(_Shape):  # [LOC]; numbers may be null where the device had no value
    id: int
    located_at: str
    lat: float
    lon: float
    bearing: float | None = Field(default=None, ge=0, le=360)
    speed: float | None = Field(default=None, ge=0)  # km/h [UNIT]
    odometer: float | None = Field(default=None, ge=0)  # km [UNIT]
    type: str | None = None
    description: str | None = None

    _time = field_validator("located_at")(_rfc3339)


class VehicleLocationItem(_Shape):
    vehicle_location: VehicleLocation


class VehicleLocationsResponse(_Shape):  # [LOC], paged or not
    vehicle_locations: list[VehicleLocationItem]
    pagination: Pagination | None = None


class Vehicle(_Shape):  # [VEH]
    id: int
    number: str | None = None
    vin: str | None = None
    status: str | None = None


class VehicleItem(_Shape):
    vehicle: Vehicle


class VehiclesResponse(_Shape):  # [VEH] + [PAG]
    vehicles: list[VehicleItem]
    pagination: Pagination


class User(_Shape):  # [USR]
    id: int
    first_name: str | None = None
    last_name: str | None = None
    role: Literal["driver", "fleet_user", "admin", "fleet_admin"] | None = None  # [USR], [USR2]


class UserItem(_Shape):
    user: User


class UsersResponse(_Shape):  # [USR] + [PAG]
    users: list[UserItem]
    pagination: Pagination


class PerformanceEvent(_Shape):  # [DPE]
    id: int
    type: str
    start_time: str
    end_time: str | None = None
    lat: float | None = None
    lon: float | None = None

    _times = field_validator("start_time", "end_time")(lambda v: v if v is None else _rfc3339(v))


class PerformanceEventItem(_Shape):
    driver_performance_event: PerformanceEvent


class PerformanceEventsResponse(_Shape):  # [DPE] + [PAG]
    driver_performance_events: list[PerformanceEventItem]
    pagination: Pagination


DUTY_STATUSES = frozenset({"off_duty", "on_duty", "driving", "sleeper", "yard_move", "personal_conveyance"})
VIOLATION_TYPES = frozenset({"break_30", "driving_10", "driving_11", "duty_12", "duty_14", "duty_15", "duty_16",
                             "cycle_60", "cycle_70", "cycle_60_p", "cycle_70_p"})  # [VIO], US ones


def _time_or_none(v: str | None) -> str | None:
    return v if v is None else _rfc3339(v)


class Ref(_Shape):
    id: int
    first_name: str | None = None
    last_name: str | None = None
    number: str | None = None


class LogEvent(_Shape):  # [LOGS] (event fields: our reading, see above)
    id: int
    type: str
    start_time: str
    end_time: str | None = None
    duration: int | None = Field(default=None, ge=0)
    vehicle: Ref | None = None

    _times = field_validator("start_time", "end_time")(_time_or_none)
    @field_validator("type")
    @classmethod
    def _known_status(cls, v: str) -> str:
        if v not in DUTY_STATUSES:
            raise ValueError(f"not a duty status: {v!r}")
        return v


class LogEventItem(_Shape):
    event: LogEvent


class Log(_Shape):  # [LOGS]
    id: int
    date: str
    driver: Ref
    events: list[LogEventItem]
    total_miles: int | None = None
    metric_units: bool | None = None

    @field_validator("date")
    @classmethod
    def _a_date(cls, v: str) -> str:
        datetime.strptime(v, "%Y-%m-%d")
        return v


class LogItem(_Shape):
    log: Log


class LogsResponse(_Shape):  # [LOGS] + [PAG]
    logs: list[LogItem]
    pagination: Pagination


class HosViolation(_Shape):  # [VIO]
    id: int
    type: str
    start_time: str
    end_time: str | None = None
    user: Ref

    _times = field_validator("start_time", "end_time")(_time_or_none)


class HosViolationItem(_Shape):
    hos_violation: HosViolation


class HosViolationsResponse(_Shape):  # [VIO] + [PAG]
    hos_violations: list[HosViolationItem]
    pagination: Pagination


class DrivingPeriod(_Shape):  # [DRP], [DRP2]
    id: int
    type: str
    start_time: str
    end_time: str | None = None
    status: str | None = None  # "(if available)": may be absent
    source: Literal[1, 2, 3] | None = None
    driver: Ref | None = None  # null: unidentified driving
    vehicle: Ref

    _times = field_validator("start_time", "end_time")(_time_or_none)


class DrivingPeriodItem(_Shape):
    driving_period: DrivingPeriod


class DrivingPeriodsResponse(_Shape):  # [DRP] + [PAG]
    driving_periods: list[DrivingPeriodItem]
    pagination: Pagination


ROUTES: dict[str, type[_Shape]] = {
    "/v1/logs": LogsResponse,
    "/v1/hos_violations": HosViolationsResponse,
    "/v1/driving_periods": DrivingPeriodsResponse,
    "/v1/vehicles": VehiclesResponse,
    "/v1/users": UsersResponse,
    "/v2/driver_performance_events": PerformanceEventsResponse,
    "/v3/vehicle_locations/": VehicleLocationsResponse,  # prefix: /v3/vehicle_locations/{id}
}


def model_for(path: str) -> type[_Shape]:
    for prefix, model in ROUTES.items():
        if path == prefix or prefix.endswith("/") and path.startswith(prefix):
            return model
    raise KeyError(path)


def check_page(items: int, pagination: Pagination | None, asked_per_page: int | None, asked_page_no: int) -> None:
    """The paging rules of [PAG] for one response; raises AssertionError naming the rule broken."""
    if pagination is None:
        return  # [LOC] does not say it pages: an unpaged answer is the whole answer
    want_per_page = min(asked_per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    assert pagination.per_page == want_per_page, f"per_page {pagination.per_page}, expected {want_per_page}"
    assert pagination.page_no == asked_page_no, f"page_no {pagination.page_no}, asked {asked_page_no}"
    assert items <= pagination.per_page, f"{items} items on a page of {pagination.per_page}"
    full_pages = pagination.total // pagination.per_page
    if asked_page_no <= full_pages:
        assert items == pagination.per_page, "a page before the last is full"
