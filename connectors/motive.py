"""Motive: vehicles, users, per-vehicle location history (inclusive dates, <= 3 months, metric)."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from connectors.http import TspHttp
from connectors.normalize import candidate_table, decode_page, empty_candidates, event_table
from connectors.pagination import numbered_pages
from connectors.samsara import DriverInfo, VehicleInfo

KM_PER_MILE = 1.609344
DAY_MS = 86_400_000


class _Loc(msgspec.Struct):
    id: int | None = None
    located_at: str | None = None
    lat: float | str | None = None
    lon: float | str | None = None
    bearing: float | str | None = None
    speed: float | str | None = None
    odometer: float | str | None = None


class _LocItem(msgspec.Struct):
    vehicle_location: _Loc


class _LocPage(msgspec.Struct):
    vehicle_locations: list[_LocItem]


class _Vehicle(msgspec.Struct):
    id: int
    number: str | None = None


class _VehicleItem(msgspec.Struct):
    vehicle: _Vehicle


class _Paging(msgspec.Struct):
    per_page: int
    page_no: int
    total: int


class _VehiclePage(msgspec.Struct):
    vehicles: list[_VehicleItem]
    pagination: _Paging


class _User(msgspec.Struct):
    id: int
    first_name: str | None = None
    last_name: str | None = None
    role: str | None = None


class _UserItem(msgspec.Struct):
    user: _User


class _UserPage(msgspec.Struct):
    users: list[_UserItem]
    pagination: _Paging


class _EventVehicle(msgspec.Struct, frozen=True):
    id: int | None = None


class _PerfEvent(msgspec.Struct):
    id: int | None = None
    type: str = ""
    start_time: str | None = None
    lat: float | str | None = None
    lon: float | str | None = None
    start_speed: float | str | None = None
    vehicle: _EventVehicle = _EventVehicle()


class _PerfItem(msgspec.Struct):
    driver_performance_event: _PerfEvent


class _PerfPage(msgspec.Struct):
    driver_performance_events: list[_PerfItem]
    pagination: _Paging


_EVENT_KINDS = {"hard_brake": "harsh_brake", "hard_accel": "harsh_accel", "hard_corner": "harsh_turn"}


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


class MotiveConnector:
    tsp = "motive"
    source = "motive"
    window_ms = 7 * DAY_MS  # well inside the 3-month limit; bounds one response's size

    def __init__(self, http: TspHttp, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id
        self._locs = msgspec.json.Decoder(_LocPage)
        self._vehicles = msgspec.json.Decoder(_VehiclePage)
        self._events = msgspec.json.Decoder(_PerfPage)

    def _decode(self, decoder: msgspec.json.Decoder, content: bytes, what: str):  # type: ignore[no-untyped-def]
        return decode_page(self.tsp, decoder, content, what)

    def vehicles(self) -> list[VehicleInfo]:
        def fetch(page_no: int) -> tuple[list[_VehicleItem], int, int]:
            r = self.http.get("/v1/vehicles", {"per_page": 100, "page_no": page_no})
            page = self._decode(self._vehicles, r.content, "vehicles")
            return page.vehicles, len(page.vehicles), page.pagination.total

        return [VehicleInfo(str(i.vehicle.id), i.vehicle.number) for page in numbered_pages(fetch) for i in page]

    def drivers(self) -> list[DriverInfo]:
        """Users whose role is driver."""
        decoder = msgspec.json.Decoder(_UserPage)

        def fetch(page_no: int) -> tuple[list[_UserItem], int, int]:
            r = self.http.get("/v1/users", {"per_page": 100, "page_no": page_no})
            page = self._decode(decoder, r.content, "users")
            return page.users, len(page.users), page.pagination.total

        return [DriverInfo(str(i.user.id), " ".join(x for x in (i.user.first_name, i.user.last_name) if x) or None)
                for page in numbered_pages(fetch) for i in page if i.user.role in (None, "driver")]

    def events_window(self, start_ms: int, end_ms: int) -> pa.Table:
        """Driver performance events of the fleet in [start_ms, end_ms), as candidate events."""
        from connectors.samsara import rfc3339

        def fetch(page_no: int) -> tuple[list[_PerfItem], int, int]:
            r = self.http.get("/v2/driver_performance_events", {"start_time": rfc3339(start_ms),
                                                                 "end_time": rfc3339(end_ms), "per_page": 100,
                                                                 "page_no": page_no})
            page = self._decode(self._events, r.content, "driver performance events")
            return page.driver_performance_events, len(page.driver_performance_events), page.pagination.total

        ev = [i.driver_performance_event for page in numbered_pages(fetch) for i in page]
        return event_table(self.fleet_id, self.source, ev,
                           [str(e.vehicle.id) if e.vehicle.id is not None else None for e in ev],
                           [str(e.id) if e.id is not None else None for e in ev], [e.start_time for e in ev],
                           [_EVENT_KINDS.get(e.type, "other") for e in ev], [e.type for e in ev],
                           [e.lat for e in ev], [e.lon for e in ev], [e.start_speed for e in ev],
                           speed_scale=1 / KM_PER_MILE)

    def gps_window(self, vehicle_id: str, start_ms: int, end_ms: int) -> pa.Table:
        """Candidate pings of one vehicle in [start_ms, end_ms).

        Motive takes inclusive UTC dates, so the request covers whole days and the result is cut
        back to the half-open window here.
        """
        r = self.http.get(f"/v3/vehicle_locations/{vehicle_id}",
                          {"start_date": _date(start_ms), "end_date": _date(end_ms - 1)})
        locs = [item.vehicle_location for item in self._decode(self._locs, r.content, "locations").vehicle_locations]
        if not locs:
            return empty_candidates()
        table = candidate_table(
            self.fleet_id, self.source, pa.array([vehicle_id] * len(locs), pa.string()), locs,
            [x.located_at for x in locs], [x.lat for x in locs], [x.lon for x in locs], [x.speed for x in locs],
            [x.bearing for x in locs], [x.odometer for x in locs], speed_scale=1 / KM_PER_MILE,
            odometer_scale=1 / KM_PER_MILE)
        ts = pc.cast(table["ts"], pa.int64())
        # Rows outside the window are kept only when their time is unusable: validation decides them.
        inside = pc.or_kleene(pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms)), pc.is_null(ts))
        far = pc.or_(pc.less(ts, start_ms - 366 * DAY_MS), pc.greater(ts, end_ms + 366 * DAY_MS))
        return table.filter(pc.fill_null(pc.or_(inside, far), True))


