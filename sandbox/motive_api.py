"""Fake Motive (formerly KeepTruckin) API, following the shapes of Motive's public API reference.

- OAuth2: `GET /oauth/authorize` auto-approves and redirects with `code` and `state`;
  `POST /oauth/token` with the client credentials in the form body; access tokens live 7200 s
  by default; refresh tokens rotate. Resource routes also accept an `X-Api-Key` header.
- `GET /v1/vehicles` (and `/v1/users`, `/v1/logs`, `/v1/hos_violations`, `/v1/driving_periods`:
  sandbox/hos_routes.py): `page_no`/`per_page` (at most 100; larger values are
  clamped), `pagination {per_page, page_no, total}`, items wrapped as `{"vehicle": {...}}`.
- `GET /v3/vehicle_locations/{id}?start_date&end_date[&per_page][&page_no]`: inclusive UTC
  dates, an end date more than 3 calendar months after the start date is a 400. Not paginated,
  unless the fleet's `paged_history` quirk is on: then paged like every Motive list (25 by
  default, at most 100, `pagination {per_page, page_no, total}`). Units are metric as in
  Motive's default: `speed` in km/h, `odometer` in km; `bearing` is null while stopped.
- Per-fleet quirks (`sandbox/quirks.py`): offsets and whole seconds, unknown fields, integers
  for floats, `speed: null`, `bearing: 360.0`. Shapes: tests/contracts/motive_shapes.py.
- `GET /v2/driver_performance_events?start_time&end_time[&vehicle_ids][&per_page][&page_no]`.
- 429s carry `Retry-After` only about half of the time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date, datetime, timezone
from urllib.parse import urlencode

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.faults import chance
from sandbox.hos_routes import MotiveHos
from sandbox.http import BadRequest, Gate, form_fields, json_bytes, parse_date, parse_time, raw_json, rfc3339_ms
from sandbox.paging import motive_list, motive_paging
from sandbox.quirks import Quirks, home_zone, num, render_times
from sandbox.simulator import PingColumns, Vehicle
from sandbox.tokens import OAuthError
from sandbox.world import SandboxWorld

KM_PER_MILE = 1.609344
_TYPES = {"harsh_brake": "hard_brake", "harsh_accel": "hard_accel", "sharp_turn": "hard_corner"}


class MotiveApp:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        gate = Gate(world, "motive", allow_api_key=True, omit_retry_after=0.5)
        self._cache: OrderedDict[tuple, list[bytes]] = OrderedDict()
        self._cache_lock = threading.Lock()
        hos = MotiveHos(world)  # users and hours of service: sandbox/hos_routes.py
        self.app = Starlette(routes=[
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1/vehicles", gate.wrap(self.vehicles), methods=["GET"]),
            Route("/v1/users", gate.wrap(hos.users), methods=["GET"]),
            Route("/v1/logs", gate.wrap(hos.logs), methods=["GET"]),
            Route("/v1/hos_violations", gate.wrap(hos.violations), methods=["GET"]),
            Route("/v1/driving_periods", gate.wrap(hos.driving_periods), methods=["GET"]),
            Route("/v3/vehicle_locations/{vehicle_id}", gate.wrap(self.locations), methods=["GET"]),
            Route("/v2/driver_performance_events", gate.wrap(self.performance_events), methods=["GET"]),
            *admin_routes(world),
        ])

    # ------------------------------------------------------------------ OAuth
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        authority = self.world.authorities["motive"]
        if not authority.has_client(q.get("client_id", "")):
            return JSONResponse({"error": "invalid_client", "error_description": "unknown client_id"}, 400)
        redirect = q.get("redirect_uri")
        if not redirect or not redirect.startswith(("http://", "https://")):
            return JSONResponse({"error": "invalid_request", "error_description": "redirect_uri is required"}, 400)
        fleets = self.world.fleets_of("motive")
        fleet = q.get("fleet") or (fleets[0].spec.fleet_id if fleets else "")
        sep = "&" if "?" in redirect else "?"
        if q.get("response_type") != "code" or fleet not in {f.spec.fleet_id for f in fleets}:
            err = "unsupported_response_type" if q.get("response_type") != "code" else "access_denied"
            return RedirectResponse(f"{redirect}{sep}{urlencode({'error': err, **_state(q)})}", 302)
        code = authority.issue_code(q["client_id"], redirect, fleet)
        return RedirectResponse(f"{redirect}{sep}{urlencode({'code': code, **_state(q)})}", 302)

    async def token(self, request: Request) -> Response:
        authority = self.world.authorities["motive"]
        form = await form_fields(request)
        client_id, secret = _s(form.get("client_id")), _s(form.get("client_secret"))
        try:
            authority.check_client(client_id, secret)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = authority.exchange_code(client_id or "", _s(form.get("code")), _s(form.get("redirect_uri")))
            elif grant_type == "refresh_token":
                grant = authority.refresh(_s(form.get("refresh_token")))
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except OAuthError as e:
            return JSONResponse({"error": e.error, "error_description": e.description}, status_code=e.status)
        return JSONResponse({"access_token": grant.access_token, "token_type": "Bearer",
                             "expires_in": grant.expires_in, "refresh_token": grant.refresh_token,
                             "scope": "vehicles.read locations.read driver_performance_events.read users.read "
                                      "hos_logs.logs hos_logs.hos_violation", "created_at": int(
                                 datetime.now(timezone.utc).timestamp())})

    # ------------------------------------------------------------------ lists
    async def vehicles(self, request: Request, fleet: str) -> Response:
        items = [{"vehicle": {"id": int(v.vehicle_id), "number": v.name, "vin": v.vin, "status": "active",
                              "make": "Freightliner", "model": "Cascadia"}} for v in self.world.sims[fleet].vehicles]
        return motive_list("vehicles", items, request)

    async def performance_events(self, request: Request, fleet: str) -> Response:
        q = request.query_params
        start = parse_time(q.get("start_time"), "start_time")
        end = parse_time(q.get("end_time"), "end_time")
        if end <= start:
            raise BadRequest("end_time must be after start_time")
        wanted = {x for x in (q.get("vehicle_ids") or "").split(",") if x}
        now = self.world.clock.now_ms()
        items = []
        for v in self.world.sims[fleet].vehicles:
            if wanted and v.vehicle_id not in wanted:
                continue
            for e in self.world.sims[fleet].events(v, start, min(end, now)):
                if e.kind not in _TYPES:
                    continue
                t0 = rfc3339_ms(np.array([e.ts_ms, e.ts_ms + e.duration_s * 1000]))
                kmh = round(e.speed_mph * KM_PER_MILE, 1)
                items.append({"driver_performance_event": {
                    "id": e.ts_ms // 1000 * 10 + v.index % 10, "type": _TYPES[e.kind], "start_time": t0[0],
                    "end_time": t0[1], "lat": e.lat, "lon": e.lon, "start_speed": kmh,
                    "vehicle": {"id": int(v.vehicle_id), "number": v.name}}})
        return motive_list("driver_performance_events", items, request)

    # ------------------------------------------------------------------ locations
    async def locations(self, request: Request, fleet: str) -> Response:
        vid = request.path_params["vehicle_id"]
        vehicle = next((v for v in self.world.sims[fleet].vehicles if v.vehicle_id == vid), None)
        if vehicle is None:
            return JSONResponse({"error_message": f"Vehicle {vid} not found"}, status_code=404)
        d0 = parse_date(request.query_params.get("start_date"), "start_date")
        d1 = parse_date(request.query_params.get("end_date"), "end_date")
        if d1 < d0:
            raise BadRequest("end_date must not be before start_date")
        if d1 > _add_months(d0, 3):
            raise BadRequest("Date range cannot exceed 3 months")
        lo = int(datetime(d0.year, d0.month, d0.day, tzinfo=timezone.utc).timestamp() * 1000)
        hi = int(datetime(d1.year, d1.month, d1.day, tzinfo=timezone.utc).timestamp() * 1000) + 86_400_000
        plan = self.world.faults["motive"]
        quirks = self.world.quirks[fleet]
        now = self.world.clock.now_ms()
        stable_now = min(now, hi) if plan.late_days == 0 else now
        key = (fleet, vid, lo, hi, stable_now, plan, quirks)
        with self._cache_lock:
            cached = self._cache.get(key)
        items: list[bytes]
        if cached is not None:
            items = cached
        else:
            items = self._render(fleet, vehicle, self.world.visible_pings(fleet, vehicle, lo, hi), plan, quirks)
            with self._cache_lock:
                self._cache[key] = items
                while len(self._cache) > 256:
                    self._cache.popitem(last=False)
        if not quirks.paged_history:
            return raw_json(b'{"vehicle_locations":[' + b",".join(items) + b"]}")
        per_page, page_no = motive_paging(request)
        page = items[(page_no - 1) * per_page: page_no * per_page]
        paging = json_bytes({"per_page": per_page, "page_no": page_no, "total": len(items)})
        return raw_json(b'{"vehicle_locations":[' + b",".join(page) + b'],"pagination":' + paging + b"}")

    def _render(self, fleet: str, v: Vehicle, c: PingColumns, plan, quirks: Quirks) -> list[bytes]:
        if not len(c):
            return []
        whole = c.ts_ms // 1000 * 1000  # Motive: whole seconds
        zone = home_zone(v.home.lat, v.home.lon) if quirks.local_offsets else None
        times = render_times(whole, quirks, v.vehicle_id, zone, whole_seconds_only=True)
        lat, lon, hdg = c.lat.tolist(), c.lon.tolist(), c.heading_deg.tolist()
        kmh = np.round(c.speed_mph * KM_PER_MILE, 2).tolist()
        # None: the device sent no reading (sandbox/odometer.py), served as null
        km = [None if np.isnan(x) else x for x in np.round(c.odometer_mi * KM_PER_MILE, 2).tolist()]
        null_speed = quirks.picked("null_speed", v.vehicle_id, c.ts_ms)
        north = quirks.picked("north_as_360", v.vehicle_id, c.ts_ms)
        ints = quirks.ints_for_floats
        extra = ',"true_odometer":null,"fuel":null,"engine_hours":null,"driver":null' if quirks.extra_fields else ""
        order = list(range(len(times)))
        if plan.duplicate_across_pages and chance(plan.seed, "dup", fleet, v.vehicle_id, times[0]) < \
                plan.duplicate_across_pages:
            at = int(chance(plan.seed, "dup-at", fleet, v.vehicle_id, times[0]) * len(order))
            order = order[:at] + order[max(0, at - 5):at] + order[at:]
        if plan.out_of_order and chance(plan.seed, "ooo", fleet, v.vehicle_id, times[0]) < plan.out_of_order:
            rng = np.random.default_rng(int(chance(plan.seed, "ooo-perm", fleet, v.vehicle_id, times[0]) * 2**32))
            order = [order[i] for i in rng.permutation(len(order))]
        base = c.ts_ms[0] // 1000
        out = []
        strings = plan.numbers_as_strings
        for i in order:
            moving = kmh[i] > 0
            bearing = ("360.0" if north[i] else num(hdg[i], ints)) if moving else "null"
            speed = "null" if null_speed[i] else num(kmh[i], ints)
            kind = "vehicle_moving" if moving else "vehicle_stopped"
            pid = int(base) * 10 + i
            k = km[i]
            odo_s = "null" if k is None else f'"{k}"'
            odo_n = "null" if k is None else num(k, ints)
            if strings and chance(plan.seed, "str", fleet, v.vehicle_id, times[i]) < strings:
                out.append(f'{{"vehicle_location":{{"id":{pid},"located_at":"{times[i]}","lat":"{lat[i]}",'
                           f'"lon":"{lon[i]}","bearing":{bearing},"speed":"{kmh[i]}","odometer":{odo_s},'
                           f'"type":"{kind}","description":""}}}}'.encode())
            else:
                out.append(f'{{"vehicle_location":{{"id":{pid},"located_at":"{times[i]}","lat":{lat[i]},'
                           f'"lon":{lon[i]},"bearing":{bearing},"speed":{speed},"odometer":{odo_n},'
                           f'"type":"{kind}","description":""{extra}}}}}'.encode())
        if plan.malformed and chance(plan.seed, "junk", fleet, v.vehicle_id, times[0]) < plan.malformed:
            out.extend(x.encode() for x in _junk_motive(times[0], lat[0], lon[0]))
        return out


def _junk_motive(time: str, lat: float, lon: float) -> list[str]:
    loc = '{{"vehicle_location":{{"id":1,"located_at":"{t}","lat":{la},"lon":{lo},"bearing":null,' \
          '"speed":{s},"odometer":null,"type":"vehicle_moving","description":""}}}}'
    return [
        loc.format(t=time, la="null", lo=lon, s=20.0),
        loc.format(t=time, la='"NaN"', lo=lon, s=20.0),
        loc.format(t=time, la=0.0, lo=0.0, s=0.0),
        loc.format(t="2071" + time[4:], la=lat, lo=lon, s=20.0),
        loc.format(t=time, la=lat, lo=lon, s='"fast"'),  # lands, speed null
        loc.format(t=time, la="true", lo=lon, s=20.0),  # fails the typed decode
    ]


def _add_months(d: date, months: int) -> date:
    import calendar

    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _state(q) -> dict[str, str]:
    return {"state": q["state"]} if "state" in q else {}


def _s(value: object) -> str | None:
    return value if isinstance(value, str) else None
