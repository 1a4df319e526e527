"""Motive: vehicles, users, per-vehicle location history (inclusive dates, <= 3 months, metric).

Motive has no SDK; the shapes come from its public reference (sources in
tests/contracts/motive_shapes.py). Every list GET pages by `per_page` (default 25, at most 100)
and `page_no`, so location history asks for 100 a page and follows pages until
`page_no * per_page >= total` or an empty page; a response without `pagination` is one complete
page (the endpoint's own page does not say that it pages). Speeds are km/h and may be null;
`bearing` may be 360.0 (north) or null. Event types are Motive's `hard_brake`, `hard_accel`,
`hard_corner`; any other is kept verbatim as kind `other` and counted in `unknown_labels`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.errors import MalformedResponse
from connectors.hos import MotiveHos
from connectors.http import TspHttp
from connectors.normalize import (
    Loose,
    candidate_table,
    convert_each,
    decode_or_salvage,
    decode_page,
    empty_candidates,
    event_table,
    repeated,
)
from connectors.pages import Fetched, page_rows
from connectors.pagination import PageNumbers, numbered_pages, salvaged_pagination
from connectors.samsara import DriverInfo, VehicleInfo

KM_PER_MILE = 1.609344
DAY_MS = 86_400_000


# The location page's shapes are not tracked by the cyclic GC (gc=False: they hold no cycles): a
# page of a week decodes into tens of thousands of them, and the collections they set off were
# half of the decode's CPU (as with Samsara's, connectors/samsara.py).
class _Loc(msgspec.Struct, gc=False):
    id: int | None = None
    located_at: str | None = None
    lat: float | str | None = None
    lon: float | str | None = None
    bearing: float | str | None = None
    speed: float | str | None = None
    odometer: float | str | None = None


class _LocItem(msgspec.Struct, gc=False):
    vehicle_location: _Loc


class _Vehicle(msgspec.Struct):
    id: int
    number: str | None = None


class _VehicleItem(msgspec.Struct):
    vehicle: _Vehicle


class _LocPage(msgspec.Struct, gc=False):
    vehicle_locations: list[_LocItem]
    pagination: PageNumbers | None = None  # absent: the response is the whole answer


class _VehiclePage(msgspec.Struct):
    vehicles: list[_VehicleItem]
    pagination: PageNumbers


class _User(msgspec.Struct):
    id: int
    first_name: str | None = None
    last_name: str | None = None
    role: str | None = None


class _UserItem(msgspec.Struct):
    user: _User


class _UserPage(msgspec.Struct):
    users: list[_UserItem]
    pagination: PageNumbers


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
    pagination: PageNumbers | None = None


_EVENT_KINDS = {"hard_brake": "harsh_brake", "hard_accel": "harsh_accel", "hard_corner": "harsh_turn"}
PER_PAGE = 100  # Motive's maximum


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


class MotiveConnector:
    tsp = "motive"
    source = "motive"
    slice_ms = 7 * DAY_MS  # well inside the 3-month limit; bounds one response's size

    def __init__(self, http: TspHttp, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id
        self._locs = msgspec.json.Decoder(_LocPage)
        self._vehicles = msgspec.json.Decoder(_VehiclePage)
        self._events = msgspec.json.Decoder(_PerfPage)
        self._lock = threading.Lock()
        self.unknown_labels: Counter[str] = Counter()  # event types kept as kind "other"
        self.salvaged_pages = 0  # pages that failed the typed decode and were read record by record
        self.hos = MotiveHos(http, fleet_id)  # logins, duty statuses, violations (connectors/hos.py)

    def _decode(self, decoder: msgspec.json.Decoder, content: bytes, what: str) -> Any:
        return decode_page(self.tsp, decoder, content, what)

    def vehicles(self) -> list[VehicleInfo]:
        def fetch(page_no: int) -> tuple[list[_VehicleItem], int, PageNumbers | None]:
            r = self.http.get("/v1/vehicles", {"per_page": PER_PAGE, "page_no": page_no})
            page = self._decode(self._vehicles, r.content, "vehicles")
            return page.vehicles, len(page.vehicles), page.pagination

        return [VehicleInfo(str(i.vehicle.id), i.vehicle.number)
                for page in numbered_pages(self.tsp, fetch) for i in page]

    def drivers(self) -> list[DriverInfo]:
        """Users whose role is driver."""
        decoder = msgspec.json.Decoder(_UserPage)

        def fetch(page_no: int) -> tuple[list[_UserItem], int, PageNumbers | None]:
            r = self.http.get("/v1/users", {"per_page": PER_PAGE, "page_no": page_no})
            page = self._decode(decoder, r.content, "users")
            return page.users, len(page.users), page.pagination

        return [DriverInfo(str(i.user.id), " ".join(x for x in (i.user.first_name, i.user.last_name) if x) or None)
                for page in numbered_pages(self.tsp, fetch) for i in page if i.user.role in (None, "driver")]

    def events_slice(self, start_ms: int, end_ms: int) -> pa.Table:
        """Driver performance events of the fleet in [start_ms, end_ms), as candidate events."""
        return self.events_fetch(start_ms, end_ms).read()

    def events_fetch(self, start_ms: int, end_ms: int) -> Fetched:
        """The events slice fetched (connectors.pages; Motive's pages are small: decoded as they come)."""
        from connectors.samsara import rfc3339

        bodies: list[bytes] = []

        def fetch(page_no: int) -> tuple[list[Any], int, PageNumbers | None]:
            r = self.http.get("/v2/driver_performance_events", {"start_time": rfc3339(start_ms),
                                                                 "end_time": rfc3339(end_ms), "per_page": PER_PAGE,
                                                                 "page_no": page_no})
            bodies.append(_records(r.content, "driver_performance_events"))
            page, body = decode_or_salvage(self.tsp, self._events, r.content, "driver performance events")
            if page is not None:
                items = [i.driver_performance_event for i in page.driver_performance_events]
                return items, len(items), page.pagination
            raw_items = body.get("driver_performance_events")
            wrapped = [i.get("driver_performance_event") if isinstance(i, dict) else i
                       for i in (raw_items if isinstance(raw_items, list) else [])]
            items = convert_each(wrapped, _PerfEvent)
            return items, len(items), _paging(body, "driver performance events")

        pages = list(numbered_pages(self.tsp, fetch))

        def read(skip: Collection[int]) -> tuple[pa.Table, tuple[int, ...]]:
            ev = [e for i, page in enumerate(pages) if i not in skip for e in page]
            types = [e.type if isinstance(e.type, str) else "" for e in ev]
            kinds = [_EVENT_KINDS.get(t, "other") for t in types]
            with self._lock:
                self.unknown_labels.update(t for t, k in zip(types, kinds) if k == "other")
            return event_table(self.fleet_id, self.source, ev, [_id(_get(e.vehicle, "id")) for e in ev],
                               [_id(e.id) for e in ev], [e.start_time for e in ev], kinds, types,
                               [e.lat for e in ev], [e.lon for e in ev], [e.start_speed for e in ev],
                               speed_scale=1 / KM_PER_MILE), page_rows([len(page) for page in pages], skip)

        return Fetched(tuple(bodies), read)

    def _locations(self, vehicle_id: str, params: dict[str, Any], span_ms: int,
                   bodies: list[bytes] | None = None) -> tuple[list[list[_Loc | Loose]], bool]:
        """Every location of the request (`span_ms` of one vehicle's time), page by page, and whether
        any page had to be salvaged record by record; each page's body goes to `bodies` when given."""
        salvaged = False

        def fetch(page_no: int) -> tuple[list[Any], int, PageNumbers | None]:
            nonlocal salvaged
            r = self.http.get(f"/v3/vehicle_locations/{vehicle_id}",
                              {**params, "per_page": PER_PAGE, "page_no": page_no})
            if bodies is not None:
                bodies.append(_records(r.content, "vehicle_locations"))
            page, body = decode_or_salvage(self.tsp, self._locs, r.content, "locations")
            if page is not None:
                items = [i.vehicle_location for i in page.vehicle_locations]
                return items, len(items), page.pagination
            salvaged = True
            with self._lock:
                self.salvaged_pages += 1
            raw_items = body.get("vehicle_locations")
            if not isinstance(raw_items, list):
                raise MalformedResponse(self.tsp, "locations: response has no vehicle_locations list")
            wrapped = [i.get("vehicle_location") if isinstance(i, dict) else i for i in raw_items]
            items = convert_each(wrapped, _Loc)
            return items, len(items), _paging(body, "locations")

        cap = self.http.limits.max_pages(span_ms, PER_PAGE)
        pages = numbered_pages(self.tsp, fetch, cap, f"{span_ms / 3_600_000:g} h of one vehicle's locations")
        return list(pages), salvaged

    def gps_slice(self, vehicle_id: str, start_ms: int, end_ms: int) -> pa.Table:
        """Candidate pings of one vehicle in [start_ms, end_ms)."""
        return self._gps(vehicle_id, start_ms, end_ms, None).read()

    def gps_fetch(self, vehicle_id: str, start_ms: int, end_ms: int) -> Fetched:
        """One vehicle's locations in [start_ms, end_ms), fetched (connectors.pages); its pages (100
        records) are decoded as they come, and their bodies kept for the digest."""
        return self._gps(vehicle_id, start_ms, end_ms, [])

    def _gps(self, vehicle_id: str, start_ms: int, end_ms: int, bodies: list[bytes] | None) -> Fetched:
        """Motive takes inclusive UTC dates, so the request covers whole days and the result is cut
        back to the half-open window when read."""
        # Whole days are asked for: the span the pages may cover is the window plus a day each side.
        pages, salvaged = self._locations(vehicle_id, {"start_date": _date(start_ms), "end_date": _date(end_ms - 1)},
                                          end_ms - start_ms + 2 * DAY_MS, bodies)

        def read(skip: Collection[int]) -> tuple[pa.Table, tuple[int, ...]]:
            chosen = [(i, page) for i, page in enumerate(pages) if i not in skip]
            locs = [loc for _, page in chosen for loc in page]
            if not locs:
                return empty_candidates(), (0,) * len(pages)
            table = candidate_table(
                self.fleet_id, self.source, repeated(vehicle_id, len(locs)), locs,
                [x.located_at for x in locs], [x.lat for x in locs], [x.lon for x in locs], [x.speed for x in locs],
                [x.bearing for x in locs], [x.odometer for x in locs], speed_scale=1 / KM_PER_MILE,
                odometer_scale=1 / KM_PER_MILE, loose=salvaged)
            ts = pc.cast(table["ts"], pa.int64())
            # Rows outside the window are kept only when their time is unusable: validation decides them.
            inside = pc.or_kleene(pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms)), pc.is_null(ts))
            far = pc.or_(pc.less(ts, start_ms - 366 * DAY_MS), pc.greater(ts, end_ms + 366 * DAY_MS))
            keep = np.asarray(pc.fill_null(pc.or_(inside, far), True), dtype=bool)
            counts = [0] * len(pages)
            at = 0
            for i, page in chosen:  # the rows each page gave, for the caller's per-page bookkeeping
                counts[i] = int(keep[at:at + len(page)].sum())
                at += len(page)
            return table.filter(pa.array(keep)), tuple(counts)

        return Fetched(tuple(bodies or ()), read)


_RECORDS = {key: msgspec.json.Decoder(msgspec.defstruct(f"_Records_{key}", [(key, msgspec.Raw)]))
            for key in ("vehicle_locations", "driver_performance_events")}


def _records(content: bytes, key: str) -> bytes:
    """What a page's digest covers (connectors.pages): its records list, not the pagination beside
    it (`total` grows with every record the TSP receives, also after this page); the whole body
    when it is not that shape."""
    try:
        return bytes(getattr(_RECORDS[key].decode(content), key))
    except msgspec.DecodeError:
        return content


def _paging(body: dict, what: str) -> PageNumbers | None:
    """A salvaged page's numbers; none when it has no `pagination` (the whole answer)."""
    return None if body.get("pagination") is None else salvaged_pagination("motive", body, PageNumbers, what)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _id(value: Any) -> str | None:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
