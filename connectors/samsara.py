"""Samsara: vehicles, drivers, GPS stats history (cursor pages), safety events.

The official `samsara-api` SDK's models are the contract these shapes follow (tests check the
sandbox against them). What the real API does that a naive client gets wrong, handled here:

- `time` may carry any UTC offset, with or without milliseconds (RFC 3339);
- optional fields are absent rather than null, unknown fields appear, integers stand for floats;
- a vehicle may come with an empty `gps` array or with no `gps` key at all;
- the odometer is its own stat series (`gpsOdometerMeters`) with its own timestamps: each GPS
  point takes the reading nearest in time within ODOMETER_TOLERANCE_MS, or the value of its own
  `decorations.gpsOdometerMeters` when the point carries one;
- safety-event labels are the SDK's enum values (`braking`, `acceleration`, `harshTurn` on the
  list endpoint; `Braking`, ... on the stream), matched without regard to case; any other label
  is kept verbatim as kind `other` and counted in `unknown_labels`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import msgspec
import pyarrow as pa

from common.errors import MalformedResponse
from connectors.hos import SamsaraHos
from connectors.http import TspHttp
from connectors.normalize import (
    Loose,
    candidate_table,
    convert_each,
    decode_or_salvage,
    decode_page,
    empty_candidates,
    event_table,
    float_column,
    nearest_in_time,
    repeated,
    time_column,
)
from connectors.pages import Fetched
from connectors.pagination import Cursor, cursor_pages, salvaged_pagination

METERS_PER_MILE = 1609.344
PAGE_LIMIT = 512
# A GPS point takes the odometer reading nearest in time within this. At 70 mph a truck covers
# about 0.6 mi in 30 s, so a match is never further off than that; without a reading that close
# the odometer is null (unknown), not a stale value.
ODOMETER_TOLERANCE_MS = 30_000
# GPS points normalised in one go (the API's pages hold 512): Arrow's per-call costs are paid per
# batch, and a slice's decoded records are held a batch at a time, not all at once.
BATCH_POINTS = 16_384


# The GPS page's shapes are not tracked by the cyclic GC (gc=False: they hold no cycles): a page
# decodes into about 1,500 of them, and the collections they set off cost a sixth of the decode.
class _DecoratedValue(msgspec.Struct, gc=False):
    value: float | str | None = None


class _Decorations(msgspec.Struct, gc=False):
    gpsOdometerMeters: _DecoratedValue | None = None


class _Gps(msgspec.Struct, gc=False):
    time: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None
    headingDegrees: float | str | None = None
    speedMilesPerHour: float | str | None = None
    decorations: _Decorations | None = None


class _Odo(msgspec.Struct, gc=False):
    time: str | None = None
    value: float | str | None = None


class _VehicleStats(msgspec.Struct, gc=False):
    id: str
    gps: list[_Gps] | None = None
    gpsOdometerMeters: list[_Odo] | None = None


class _StatsPage(msgspec.Struct, gc=False):
    data: list[_VehicleStats]
    pagination: Cursor


class _RawPage(msgspec.Struct, gc=False):
    """Any list page with its records left as the bytes they came as (a lookback slice's fetch,
    connectors.pages): msgspec.Raw is a view of the body, skipped over, not parsed."""
    data: msgspec.Raw
    pagination: Cursor


class _Vehicle(msgspec.Struct):
    id: str
    name: str | None = None
    vin: str | None = None


class _VehiclePage(msgspec.Struct):
    data: list[_Vehicle]
    pagination: Cursor


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


# The SDK's SafetyEventBehaviorLabel values (legacy list: camelCase; stream: PascalCase), lower-cased.
_EVENT_KINDS = {"braking": "harsh_brake", "acceleration": "harsh_accel", "harshturn": "harsh_turn"}


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
    pagination: Cursor


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class SamsaraConnector:
    tsp = "samsara"
    source = "samsara"
    slice_ms = 7 * 86_400_000  # one vehicle-week per window: a few hundred thousand pings at most

    def __init__(self, http: TspHttp, fleet_id: str) -> None:
        self.http = http
        self.fleet_id = fleet_id
        self._stats = msgspec.json.Decoder(_StatsPage)
        self._vehicles = msgspec.json.Decoder(_VehiclePage)
        self._raw = msgspec.json.Decoder(_RawPage)
        self._stats_data = msgspec.json.Decoder(list[_VehicleStats])
        self._events_data = msgspec.json.Decoder(list[_SafetyEvent])
        self._lock = threading.Lock()
        self.unknown_labels: Counter[str] = Counter()  # safety-event labels kept as kind "other"
        self.salvaged_pages = 0  # pages that failed the typed decode and were read record by record
        self.hos = SamsaraHos(http, fleet_id)  # logins, duty statuses, violations (connectors/hos.py)

    def _decode(self, decoder: msgspec.json.Decoder, content: bytes, what: str) -> Any:
        return decode_page(self.tsp, decoder, content, what)

    def vehicles(self) -> list[VehicleInfo]:
        def fetch(cursor: str | None) -> tuple[list[_Vehicle], str | None]:
            r = self.http.get("/fleet/vehicles", {"limit": PAGE_LIMIT, **({"after": cursor} if cursor else {})})
            page = self._decode(self._vehicles, r.content, "vehicles")
            return page.data, page.pagination.next()

        return [VehicleInfo(v.id, v.name) for page in cursor_pages(self.tsp, fetch) for v in page]

    def events_slice(self, start_ms: int, end_ms: int) -> pa.Table:
        """Safety events of the whole fleet with start_ms <= time < end_ms, as candidate events."""
        return self.events_fetch(start_ms, end_ms).read()

    def events_fetch(self, start_ms: int, end_ms: int) -> Fetched:
        """The events slice's pages, records unread (connectors.pages)."""
        params = {"startTime": rfc3339(start_ms), "endTime": rfc3339(end_ms), "limit": PAGE_LIMIT}
        pages = self._raw_pages("/fleet/safety-events", params, "safety events")

        def read(skip: Collection[int]) -> tuple[pa.Table, tuple[int, ...]]:
            events: list[Any] = []
            counts = []
            for i, (records, body) in enumerate(pages):
                page = [] if i in skip else self._page_events(records, body)
                events.extend(page)
                counts.append(len(page))
            return self._event_table(events), tuple(counts)

        return Fetched(tuple(r for r, _ in pages), read)

    def _page_events(self, records: Any, body: dict | None) -> list[Any]:
        """A fetched page's events: typed, or record by record when the page does not decode typed
        (Loose records are read field by field by _event_table)."""
        if body is None:
            try:
                return list(self._events_data.decode(records))
            except msgspec.DecodeError:
                data = msgspec.json.decode(records)
        else:
            data = body.get("data")
        return convert_each(data, _SafetyEvent)

    def _raw_pages(self, path: str, params: dict[str, Any], what: str, max_pages: int | None = None,
                   span: str = "") -> list[tuple[Any, dict | None]]:
        """Every page of a list endpoint as (its `data` bytes, None), or, for a body of the wrong shape
        (salvaged record by record when read), as (the body's bytes, the body as plain JSON)."""

        def fetch(cursor: str | None) -> tuple[tuple[Any, dict | None], str | None]:
            r = self.http.get(path, {**params, **({"after": cursor} if cursor else {})})
            page, body = decode_or_salvage(self.tsp, self._raw, r.content, what)
            if page is not None:
                return (page.data, None), page.pagination.next()
            return (r.content, body), salvaged_pagination(self.tsp, body, Cursor, what).next()

        if max_pages is None:
            return list(cursor_pages(self.tsp, fetch))
        return list(cursor_pages(self.tsp, fetch, max_pages, span))

    def _event_table(self, events: list[Any]) -> pa.Table:
        labels = [_label(e) for e in events]
        kinds = [_EVENT_KINDS.get(lb.lower(), "other") for lb in labels]
        with self._lock:
            self.unknown_labels.update(lb for lb, k in zip(labels, kinds) if k == "other")
        return event_table(self.fleet_id, self.source, events, [_ref_id(e.vehicle) for e in events],
                           [_str(e.id) for e in events], [e.time for e in events], kinds, labels,
                           [_get(e.location, "latitude") for e in events],
                           [_get(e.location, "longitude") for e in events], [None] * len(events))

    def drivers(self) -> list[DriverInfo]:
        decoder = msgspec.json.Decoder(_DriverPage)

        def fetch(cursor: str | None) -> tuple[list[_Driver], str | None]:
            r = self.http.get("/fleet/drivers", {"limit": PAGE_LIMIT, **({"after": cursor} if cursor else {})})
            page = self._decode(decoder, r.content, "drivers")
            return page.data, page.pagination.next()

        return [DriverInfo(d.id, d.name) for page in cursor_pages(self.tsp, fetch) for d in page]

    def _stats_page(self, content: bytes) -> tuple[_StatsPage, bool]:
        """The page, and whether it had to be salvaged record by record."""
        page, body = decode_or_salvage(self.tsp, self._stats, content, "GPS history")
        if page is not None:
            return page, False
        return _StatsPage(self._salvage_vehicles(body.get("data")), salvaged_pagination(self.tsp, body, Cursor, "GPS history")), True

    def _salvage_vehicles(self, data: Any) -> list[_VehicleStats]:
        """A page's vehicles read record by record (its typed decode failed): a bad point costs itself."""
        with self._lock:
            self.salvaged_pages += 1
        if not isinstance(data, list):
            raise MalformedResponse(self.tsp, "GPS history: response has no data list")
        vehicles = []
        for v in data:
            vid = v.get("id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not vid:
                raise MalformedResponse(self.tsp, "GPS history: a vehicle entry has no id")
            vehicles.append(_VehicleStats(vid, convert_each(v.get("gps"), _Gps),  # type: ignore[arg-type]
                                          convert_each(v.get("gpsOdometerMeters"), _Odo)))  # type: ignore[arg-type]
        return vehicles

    def _gps_params(self, vehicle_id: str, start_ms: int, end_ms: int) -> dict[str, Any]:
        return {"types": "gps,gpsOdometerMeters", "startTime": rfc3339(start_ms), "endTime": rfc3339(end_ms),
                "vehicleIds": vehicle_id, "limit": PAGE_LIMIT}

    def gps_fetch(self, vehicle_id: str, start_ms: int, end_ms: int) -> Fetched:
        """One vehicle's GPS in [start_ms, end_ms), pages fetched, records unread (connectors.pages)."""
        cap = self.http.limits.max_pages(end_ms - start_ms, PAGE_LIMIT)
        what = f"{(end_ms - start_ms) / 3_600_000:g} h of one vehicle's GPS"
        pages = self._raw_pages("/fleet/vehicles/stats/history", self._gps_params(vehicle_id, start_ms, end_ms),
                                "GPS history", cap, what)

        def read(skip: Collection[int]) -> tuple[pa.Table, tuple[int, ...]]:
            counts = [0] * len(pages)

            def counted() -> Iterator[tuple[list[_VehicleStats], bool, bool]]:
                for i, page in enumerate(pages):
                    if i not in skip:
                        for vehicles, salvaged, decorated in self._read_pages([page]):
                            counts[i] = sum(len(v.gps or []) for v in vehicles)  # a candidate row per point
                            yield vehicles, salvaged, decorated

            tables = list(self._normalised(counted()))
            return (pa.concat_tables(tables) if tables else empty_candidates()), tuple(counts)

        return Fetched(tuple(r for r, _ in pages), read)

    def _read_pages(self, pages: list[tuple[Any, dict | None]]) -> Iterator[tuple[list[_VehicleStats], bool, bool]]:
        """Fetched pages' records decoded, a page at a time: (vehicles, salvaged, decorated)."""
        for records, body in pages:
            if body is None:
                try:
                    vehicles, salvaged = self._stats_data.decode(records), False
                except msgspec.DecodeError:
                    vehicles, salvaged = self._salvage_vehicles(msgspec.json.decode(records)), True
            else:
                vehicles, salvaged = self._salvage_vehicles(body.get("data")), True
            yield vehicles, salvaged, b'"decorations"' in (records if isinstance(records, bytes) else bytes(records))

    def gps_pages(self, vehicle_id: str, start_ms: int, end_ms: int) -> Iterator[pa.Table]:
        """Candidate pings of one vehicle in [start_ms, end_ms), a table per BATCH_POINTS points or so."""
        params = self._gps_params(vehicle_id, start_ms, end_ms)

        def fetch(cursor: str | None) -> tuple[tuple[list[_VehicleStats], bool, bool], str | None]:
            r = self.http.get("/fleet/vehicles/stats/history", {**params, **({"after": cursor} if cursor else {})})
            page, salvaged = self._stats_page(r.content)
            # A bytes search is far cheaper than looking for decorations point by point.
            decorated = b'"decorations"' in r.content
            return (page.data, salvaged, decorated), page.pagination.next()

        cap = self.http.limits.max_pages(end_ms - start_ms, PAGE_LIMIT)
        what = f"{(end_ms - start_ms) / 3_600_000:g} h of one vehicle's GPS"
        return self._normalised(cursor_pages(self.tsp, fetch, cap, what))

    def gps_slice(self, vehicle_id: str, start_ms: int, end_ms: int) -> pa.Table:
        tables = list(self.gps_pages(vehicle_id, start_ms, end_ms))
        return pa.concat_tables(tables) if tables else empty_candidates()

    def _normalised(self, pages: Iterable[tuple[list[_VehicleStats], bool, bool]]) -> Iterator[pa.Table]:
        """Pages' vehicle entries (with their page's salvaged and decorated flags) as candidate tables,
        several pages at a time: the per-call costs of building Arrow columns are paid per batch, not
        per page, and a batch bounds how many decoded records are held."""
        batch: list[tuple[_VehicleStats, bool, bool]] = []
        points = 0
        for vehicles, salvaged, decorated in pages:
            for v in vehicles:
                if v.gps:
                    batch.append((v, salvaged, decorated))
                    points += len(v.gps)
            if points >= BATCH_POINTS:
                yield self._normalise_batch(batch)
                batch, points = [], 0
        if batch:
            yield self._normalise_batch(batch)

    def _normalise(self, v: _VehicleStats, salvaged: bool = True, decorated: bool = True) -> pa.Table:
        return self._normalise_batch([(v, salvaged, decorated)])

    def _normalise_batch(self, batch: list[tuple[_VehicleStats, bool, bool]]) -> pa.Table:
        """Vehicle entries -> one candidate table; each entry's odometer is matched within the entry."""
        gps: list[Any] = []
        times: list[Any] = []
        odometer: list[Any] = []
        fills: list[pa.Array] = []
        with_odometer = with_fill = False
        ids: list[tuple[str, int]] = []
        for v, _salvaged, decorated in batch:
            points = v.gps or []
            own_times = [p.time for p in points]
            odo, fill = _odometer(v, points, own_times, decorated)
            gps.extend(points)
            times.extend(own_times)
            ids.append((v.id, len(points)))
            with_odometer |= odo is not None
            with_fill |= fill is not None
            odometer.extend(odo if odo is not None else [None] * len(points))
            fills.append(fill if fill is not None else pa.nulls(len(points), pa.float64()))
        n = len(gps)
        vehicle_ids = (repeated(ids[0][0], n) if all(i == ids[0][0] for i, _ in ids)
                       else pa.array([i for i, k in ids for _ in range(k)], pa.string()))
        return candidate_table(
            self.fleet_id, self.source, vehicle_ids, gps, times,
            [p.latitude for p in gps], [p.longitude for p in gps], [p.speedMilesPerHour for p in gps],
            [p.headingDegrees for p in gps], odometer if with_odometer else None, odometer_scale=1 / METERS_PER_MILE,
            odometer_fill=pa.concat_arrays(fills) if with_fill else None,
            loose=any(salvaged for _, salvaged, _ in batch))


def _odometer(v: _VehicleStats, gps: list[Any], times: list[Any],
              decorated: bool) -> tuple[list[Any] | None, pa.Array | None]:
    """One entry's odometer: its points' own readings (meters; None: none sent) and/or its series
    matched to the points (miles), as the TSP sends either."""
    odometer: list[Any] | None = None
    fill = None
    if decorated:
        odometer = [_decorated_odometer(p) for p in gps]
        if all(x is None for x in odometer):
            odometer = None
    series = v.gpsOdometerMeters
    if series and odometer is None and [o.time for o in series] == times:
        odometer = [o.value for o in series]  # the series on the GPS clock: nothing to match
    elif series:
        # Its own series on its own clock: each point takes the nearest reading in time.
        scratch = [False] * len(series)
        fill = nearest_in_time(time_column(times, [False] * len(gps)),
                               time_column([o.time for o in series], scratch),
                               float_column([o.value for o in series], scratch, 1 / METERS_PER_MILE),
                               ODOMETER_TOLERANCE_MS)
    return odometer, fill


def _decorated_odometer(p: _Gps | Loose) -> Any:
    d = p.decorations
    if isinstance(d, _Decorations):
        return d.gpsOdometerMeters.value if d.gpsOdometerMeters is not None else None
    if isinstance(d, dict) and isinstance(d.get("gpsOdometerMeters"), dict):
        return d["gpsOdometerMeters"].get("value")
    return None


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else (str(value) if isinstance(value, int) else None)


def _ref_id(ref: Any) -> str | None:
    return _str(_get(ref, "id"))


def _label(e: Any) -> str:
    labels = e.behaviorLabels
    first = labels[0] if isinstance(labels, list) and labels else None
    label = _get(first, "label")
    return label if isinstance(label, str) else ""
