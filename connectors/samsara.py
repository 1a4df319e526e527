"""Samsara: vehicles, drivers, GPS stats history (cursor pages), safety events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import msgspec
import pyarrow as pa

from connectors.http import TspHttp
from connectors.normalize import candidate_table, decode_page, empty_candidates, event_table
from connectors.pagination import cursor_pages

METERS_PER_MILE = 1609.344
PAGE_LIMIT = 512


class _Gps(msgspec.Struct, omit_defaults=True):
    time: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None
    headingDegrees: float | str | None = None
    speedMilesPerHour: float | str | None = None


class _Odo(msgspec.Struct):
    time: str
    value: float | str | None = None


class _VehicleStats(msgspec.Struct):
    id: str
    gps: list[_Gps] = []
    gpsOdometerMeters: list[_Odo] = []


class _Pagination(msgspec.Struct):
    endCursor: str = ""
    hasNextPage: bool = False


class _StatsPage(msgspec.Struct):
    data: list[_VehicleStats]
    pagination: _Pagination


class _Vehicle(msgspec.Struct):
    id: str
    name: str | None = None
    vin: str | None = None


class _VehiclePage(msgspec.Struct):
    data: list[_Vehicle]
    pagination: _Pagination


class _Ref(msgspec.Struct, frozen=True):
    id: str | None = None


class _Location(msgspec.Struct, frozen=True):
    latitude: float | str | None = None
    longitude: float | str | None = None


class _Label(msgspec.Struct):
    label: str = ""


class _SafetyEvent(msgspec.Struct):
    id: str | None = None
    time: str | None = None
    vehicle: _Ref = _Ref()
    location: _Location = _Location()
    behaviorLabels: list[_Label] = []


class _EventPage(msgspec.Struct):
    data: list[_SafetyEvent]
    pagination: _Pagination


_EVENT_KINDS = {"harshBrake": "harsh_brake", "harshAcceleration": "harsh_accel", "harshTurn": "harsh_turn"}


@dataclass(frozen=True)
class VehicleInfo:
    vehicle_id: str
    name: str | None


@dataclass(frozen=True)
class DriverInfo:
    driver_id: str
    name: str | None


class _Driver(msgspec.Struct):
    id: str
    name: str | None = None


class _DriverPage(msgspec.Struct):
    data: list[_Driver]
    pagination: _Pagination


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class SamsaraConnector:
    tsp = "samsara"
    source = "samsara"
    window_ms = 7 * 86_400_000  # one vehicle-week per window: a few hundred thousand pings at most

    def __init__(self, http: TspHttp, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id
        self._stats = msgspec.json.Decoder(_StatsPage)
        self._vehicles = msgspec.json.Decoder(_VehiclePage)
        self._events = msgspec.json.Decoder(_EventPage)

    def _decode(self, decoder: msgspec.json.Decoder, content: bytes, what: str):  # type: ignore[no-untyped-def]
        return decode_page(self.tsp, decoder, content, what)

    def vehicles(self) -> list[VehicleInfo]:
        def fetch(cursor: str | None) -> tuple[list[_Vehicle], str | None]:
            r = self.http.get("/fleet/vehicles", {"limit": PAGE_LIMIT, **({"after": cursor} if cursor else {})})
            page = self._decode(self._vehicles, r.content, "vehicles")
            return page.data, page.pagination.endCursor if page.pagination.hasNextPage else None

        return [VehicleInfo(v.id, v.name) for page in cursor_pages(self.tsp, fetch) for v in page]

    def events_window(self, start_ms: int, end_ms: int) -> pa.Table:
        """Safety events of the whole fleet with start_ms <= time < end_ms, as candidate events."""
        params = {"startTime": rfc3339(start_ms), "endTime": rfc3339(end_ms), "limit": PAGE_LIMIT}

        def fetch(cursor: str | None) -> tuple[list[_SafetyEvent], str | None]:
            r = self.http.get("/fleet/safety-events", {**params, **({"after": cursor} if cursor else {})})
            page = self._decode(self._events, r.content, "safety events")
            return page.data, page.pagination.endCursor if page.pagination.hasNextPage else None

        events = [e for page in cursor_pages(self.tsp, fetch) for e in page]
        labels = [e.behaviorLabels[0].label if e.behaviorLabels else "" for e in events]
        return event_table(self.fleet_id, self.source, events, [e.vehicle.id for e in events], [e.id for e in events],
                           [e.time for e in events], [_EVENT_KINDS.get(lb, "other") for lb in labels], labels,
                           [e.location.latitude for e in events], [e.location.longitude for e in events],
                           [None] * len(events))

    def drivers(self) -> list[DriverInfo]:
        decoder = msgspec.json.Decoder(_DriverPage)

        def fetch(cursor: str | None) -> tuple[list[_Driver], str | None]:
            r = self.http.get("/fleet/drivers", {"limit": PAGE_LIMIT, **({"after": cursor} if cursor else {})})
            page = self._decode(decoder, r.content, "drivers")
            return page.data, page.pagination.endCursor if page.pagination.hasNextPage else None

        return [DriverInfo(d.id, d.name) for page in cursor_pages(self.tsp, fetch) for d in page]

    def gps_pages(self, vehicle_id: str, start_ms: int, end_ms: int) -> Iterator[pa.Table]:
        """Candidate pings of one vehicle in [start_ms, end_ms), one table per page."""
        params = {"types": "gps,gpsOdometerMeters", "startTime": rfc3339(start_ms), "endTime": rfc3339(end_ms),
                  "vehicleIds": vehicle_id, "limit": PAGE_LIMIT}

        def fetch(cursor: str | None) -> tuple[_StatsPage, str | None]:
            r = self.http.get("/fleet/vehicles/stats/history", {**params, **({"after": cursor} if cursor else {})})
            page = self._decode(self._stats, r.content, "GPS history")
            return page, page.pagination.endCursor if page.pagination.hasNextPage else None

        for page in cursor_pages(self.tsp, fetch):
            for v in page.data:
                if v.gps:
                    yield self._normalise(v)

    def gps_window(self, vehicle_id: str, start_ms: int, end_ms: int) -> pa.Table:
        tables = list(self.gps_pages(vehicle_id, start_ms, end_ms))
        return pa.concat_tables(tables) if tables else empty_candidates()

    def _normalise(self, v: _VehicleStats) -> pa.Table:
        gps = v.gps
        times = [p.time for p in gps]
        odo = None
        if v.gpsOdometerMeters:
            # Odometer is its own stat series: match it to GPS points by time.
            if len(v.gpsOdometerMeters) == len(gps) and all(o.time == t for o, t in zip(v.gpsOdometerMeters, times)):
                odo = [o.value for o in v.gpsOdometerMeters]
            else:
                by_time = {o.time: o.value for o in v.gpsOdometerMeters}
                odo = [by_time.get(t) for t in times]  # type: ignore[arg-type]
        return candidate_table(
            self.fleet_id, self.source, pa.array([v.id] * len(gps), pa.string()), gps, times,
            [p.latitude for p in gps], [p.longitude for p in gps], [p.speedMilesPerHour for p in gps],
            [p.headingDegrees for p in gps], odo, odometer_scale=1 / METERS_PER_MILE)
