"""Fake Samsara API, following the shapes of Samsara's public API reference.

- OAuth2: `GET /oauth2/authorize` auto-approves (the fleet given by the sandbox-only `fleet`
  parameter, else the first Samsara fleet) and redirects with `code` and `state`;
  `POST /oauth2/token` with HTTP Basic client auth, grants `authorization_code` and
  `refresh_token`; refresh tokens rotate, a reused one gets 400 `invalid_grant`.
  `POST /oauth2/revoke` (form `token`, Basic client auth), as Samsara's OAuth examples call it:
  RFC 7009, the token's grant ends, 200 with an empty body, also for an unknown token.
- `GET /fleet/vehicles`: `{"data": [...], "pagination": {...}}`; drivers, assignments, HOS logs and
  violations: sandbox/hos_routes.py.
- `GET /fleet/vehicles/stats/history?types=gps[,gpsOdometerMeters]&startTime&endTime
  [&vehicleIds][&after][&limit][&decorations=gpsOdometerMeters]`: points with
  startTime <= time < endTime, at most `limit` (<= 512) GPS points per page, vehicles without
  points left out, optional fields left out rather than null, last page `endCursor: ""`. A page
  stops early (possibly empty, with `hasNextPage: true`) after scanning 31 vehicle-days without
  filling up, as the real API does on sparse data. `decorations=gpsOdometerMeters` puts the
  odometer on each GPS point.
- `GET /fleet/safety-events?startTime&endTime[&vehicleIds][&after][&limit]`, labels from the
  SDK's enum (`braking`, `acceleration`, `harshTurn`).
- Per-fleet quirks (`sandbox/quirks.py`): offsets and whole-second times, absent optional
  fields, unknown fields, integers for floats, empty `gps` arrays and entries without `gps`,
  short pages, the odometer series on its own clock, headings of 360.0; and hostile servers
  (`sandbox/hostile.py`): endless empty pages, a trickle, a gzip bomb, a 200 MB page.

Every response parses with the official `samsara-api` SDK's models (tests/test_sdk_contract.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox import hostile
from sandbox.admin import admin_routes
from sandbox.faults import chance
from sandbox.hos_routes import SamsaraHos
from sandbox.http import (
    BadRequest,
    Gate,
    decode_cursor,
    encode_cursor,
    form_fields,
    json_bytes,
    parse_time,
    query_hash,
    raw_json,
    rfc3339_ms,
)
from sandbox.paging import samsara_limit, samsara_list
from sandbox.quirks import Quirks, home_zone, num, render_times, uniform
from sandbox.simulator import METERS_PER_MILE, PingColumns, Vehicle
from sandbox.tokens import OAuthError
from sandbox.world import SandboxWorld

SCAN_BUDGET_DAYS = 31
DAY_MS = 86_400_000
# Values of the SDK's SafetyEventBehaviorLabel enum (samsara-api, types/safety_event_behavior_label.py).
_LABELS = {"harsh_brake": ("braking", "Braking"), "harsh_accel": ("acceleration", "Acceleration"),
           "sharp_turn": ("harshTurn", "Harsh Turn")}
ODOMETER_JITTER_MS = 1500  # the odometer series' own clock: up to this far from the GPS fix


def _selected(world: SandboxWorld, fleet: str, request: Request) -> list[Vehicle]:
    vehicles = sorted(world.sims[fleet].vehicles, key=lambda v: v.vehicle_id)
    raw = request.query_params.get("vehicleIds")
    if not raw:
        return vehicles
    wanted = {x.strip() for x in raw.split(",") if x.strip()}
    return [v for v in vehicles if v.vehicle_id in wanted]


class SamsaraApp:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        gate = Gate(world, "samsara", allow_api_key=False)
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        hos = SamsaraHos(world)  # drivers and hours of service: sandbox/hos_routes.py
        self.app = Starlette(routes=[
            Route("/oauth2/authorize", self.authorize, methods=["GET"]),
            Route("/oauth2/token", self.token, methods=["POST"]),
            Route("/oauth2/revoke", self.revoke, methods=["POST"]),
            Route("/fleet/vehicles", gate.wrap(self.vehicles), methods=["GET"]),
            Route("/fleet/drivers", gate.wrap(hos.drivers), methods=["GET"]),
            Route("/fleet/driver-vehicle-assignments", gate.wrap(hos.assignments), methods=["GET"]),
            Route("/fleet/hos/logs", gate.wrap(hos.logs), methods=["GET"]),
            Route("/fleet/hos/violations", gate.wrap(hos.violations), methods=["GET"]),
            Route("/fleet/vehicles/stats/history", gate.wrap(self.stats_history), methods=["GET"]),
            Route("/fleet/safety-events", gate.wrap(self.safety_events), methods=["GET"]),
            *admin_routes(world),
        ])

    # ------------------------------------------------------------------ OAuth
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        authority = self.world.authorities["samsara"]
        if not authority.has_client(q.get("client_id", "")):
            return JSONResponse({"error": "invalid_client", "error_description": "unknown client_id"}, 400)
        redirect = q.get("redirect_uri")
        if not redirect or not redirect.startswith(("http://", "https://")):
            return JSONResponse({"error": "invalid_request", "error_description": "redirect_uri is required"}, 400)
        if q.get("response_type", "code") != "code":
            return _redirect_error(redirect, "unsupported_response_type", q.get("state"))
        fleets = self.world.fleets_of("samsara")
        fleet = q.get("fleet") or (fleets[0].spec.fleet_id if fleets else "")
        if fleet not in {f.spec.fleet_id for f in fleets}:
            return _redirect_error(redirect, "access_denied", q.get("state"))
        code = authority.issue_code(q["client_id"], redirect, fleet)
        params = {"code": code, **({"state": q["state"]} if "state" in q else {})}
        return RedirectResponse(f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}", status_code=302)

    async def revoke(self, request: Request) -> Response:
        authority = self.world.authorities["samsara"]
        form = await form_fields(request)
        client_id, client_secret = _basic(request)
        try:
            authority.check_client(client_id, client_secret)
            if not form.get("token"):
                raise OAuthError("invalid_request", "token is required")
        except OAuthError as e:
            return JSONResponse({"error": e.error, "error_description": e.description}, status_code=e.status)
        authority.revoke_token(_s(form.get("token")))
        return Response(status_code=200)

    async def token(self, request: Request) -> Response:
        authority = self.world.authorities["samsara"]
        form = await form_fields(request)
        client_id, client_secret = _basic(request)
        try:
            authority.check_client(client_id, client_secret)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = authority.exchange_code(client_id or "", _s(form.get("code")), _s(form.get("redirect_uri")))
            elif grant_type == "refresh_token":
                grant = authority.refresh(_s(form.get("refresh_token")))
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except OAuthError as e:
            return JSONResponse({"error": e.error, "error_description": e.description}, status_code=e.status)
        return JSONResponse({"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                             "expires_in": grant.expires_in, "token_type": "bearer",
                             "scope": "read_vehicles read_drivers read_vehicle_statistics read_safety_events read_assignments read_hos"})

    # ------------------------------------------------------------------ lists
    async def vehicles(self, request: Request, fleet: str) -> Response:
        # createdAtTime is required by the SDK (VehicleResponseObjectResponseBody).
        created = rfc3339_ms(np.array([self.world.sims[fleet].spec.history_start_s * 1000]))[0]
        items = [{"id": v.vehicle_id, "name": v.name, "vin": v.vin, "createdAtTime": created,
                  "updatedAtTime": created, "externalIds": {"samsara.vin": v.vin}}
                 for v in _selected(self.world, fleet, request)]
        return samsara_list(request, items)

    async def safety_events(self, request: Request, fleet: str) -> Response:
        start = parse_time(request.query_params.get("startTime"), "startTime")
        end = parse_time(request.query_params.get("endTime"), "endTime")
        if end <= start:
            raise BadRequest("endTime must be after startTime")
        now = self.world.clock.now_ms()
        sim = self.world.sims[fleet]
        items = []
        for v in _selected(self.world, fleet, request):
            for e in sim.events(v, start, min(end, now)):
                if e.kind not in _LABELS:
                    continue
                label, name = _LABELS[e.kind]
                g = e.magnitude * 0.44704 / 9.80665 if e.kind != "sharp_turn" else None
                item: dict[str, Any] = {"id": f"{v.vehicle_id}-{e.ts_ms}", "time": rfc3339_ms(np.array([e.ts_ms]))[0],
                        "vehicle": {"id": v.vehicle_id, "name": v.name},
                        "location": {"latitude": e.lat, "longitude": e.lon},
                        "behaviorLabels": [{"label": label, "source": "automated", "name": name}]}
                if g is not None:
                    item["maxAccelerationGForce"] = round(float(g), 3)
                items.append(item)
        return samsara_list(request, items)

    # ------------------------------------------------------------------ GPS history
    async def stats_history(self, request: Request, fleet: str) -> Response:
        q = request.query_params
        types = {t.strip() for t in (q.get("types") or "").split(",") if t.strip()}
        if not types:
            raise BadRequest("types is required")
        unknown = types - {"gps", "gpsOdometerMeters"}
        if unknown:
            raise BadRequest(f"unsupported stat type(s): {', '.join(sorted(unknown))}")
        if len(types) > 3:
            raise BadRequest("at most 3 types may be requested")
        start = parse_time(q.get("startTime"), "startTime")
        end = parse_time(q.get("endTime"), "endTime")
        if end <= start:
            raise BadRequest("endTime must be after startTime")
        limit = samsara_limit(request)
        vehicles = _selected(self.world, fleet, request)
        qh = query_hash(request, "after")
        vpos, ts = 0, start
        if q.get("after"):
            a, b, h = decode_cursor(q["after"], 3)
            if h != qh or not a.isdigit() or not b.lstrip("-").isdigit():
                raise BadRequest("pagination cursor does not belong to this query")
            vpos, ts = int(a), int(b)
        plan = self.world.faults["samsara"]
        quirks = self.world.quirks[fleet]
        if quirks.endless_pages:
            return hostile.endless_page(qh)
        if quirks.gzip_bomb:
            return hostile.gzip_bomb()
        if quirks.huge_page:
            return hostile.huge_page()
        decorate = "gpsOdometerMeters" in (q.get("decorations") or "").split(",")
        now = self.world.clock.now_ms()
        # A page is fixed once everything it covers is in the past and no late data can still come.
        stable_now = min(now, end) if plan.late_days == 0 else now
        key = (fleet, request.url.query, stable_now, plan, quirks)
        with self._cache_lock:
            body = self._cache.get(key)
            if body is not None:
                self._cache.move_to_end(key)
        if body is None:
            body = self._render_history(fleet, vehicles, start, end, vpos, ts, limit, types, qh, plan, quirks,
                                        decorate)
            with self._cache_lock:
                self._cache[key] = body
                while len(self._cache) > 1024:
                    self._cache.popitem(last=False)
        return hostile.trickle(body) if quirks.trickle else raw_json(body)

    def _render_history(self, fleet: str, vehicles: list[Vehicle], start: int, end: int, vpos: int, ts: int,
                        limit: int, types: set[str], qh: str, plan, quirks: Quirks, decorate: bool) -> bytes:
        world = self.world
        if vpos >= len(vehicles):
            # The empty_gps quirk's tail page: every vehicle, no points; half without the gps key.
            entries = [f'{{"id":"{v.vehicle_id}","name":"{v.name}"'
                       + (',"gps":[]' if chance(quirks.seed, "gps-key", fleet, v.vehicle_id, start) < 0.5 else "")
                       + (',"gpsOdometerMeters":[]' if "gpsOdometerMeters" in types else "") + "}"
                       for v in vehicles]
            return ('{"data":[' + ",".join(entries) + '],"pagination":{"endCursor":"","hasNextPage":false}}').encode()
        groups: list[tuple[Vehicle, PingColumns, PingColumns | None]] = []
        if quirks.page_sizes:
            # Real pages come back short of the limit at sizes of their own.
            limit = max(1, int(limit * (0.25 + 0.75 * chance(quirks.seed, "page-size", fleet, vpos, ts))))
        need = limit
        scanned = 0
        while vpos < len(vehicles) and need > 0:
            v = vehicles[vpos]
            chunk_end = min(end, (ts // DAY_MS + 1) * DAY_MS)
            cols = world.visible_pings(fleet, v, ts, chunk_end)
            take = cols.slice(0, need)
            if len(take):
                prev = None
                if plan.duplicate_across_pages and not groups and ts > start and \
                        chance(plan.seed, "dup", fleet, v.vehicle_id, ts) < plan.duplicate_across_pages:
                    before = world.visible_pings(fleet, v, max(start, ts - 3_600_000), ts)
                    k = 1 + int(chance(plan.seed, "dup-k", fleet, v.vehicle_id, ts) * 5)
                    prev = before.slice(max(0, len(before) - k), len(before))
                groups.append((v, take, prev))
                need -= len(take)
            if len(take) < len(cols):
                ts = int(cols.ts_ms[len(take)])
                break
            ts = chunk_end
            scanned += 1
            if ts >= end:
                vpos, ts = vpos + 1, start
            if scanned >= SCAN_BUDGET_DAYS:
                break
        more = vpos < len(vehicles)
        if not more and quirks.empty_gps:
            more, vpos, ts = True, len(vehicles), start
        data = []
        for v, cols, prev in groups:
            if prev is not None and len(prev):
                cols = PingColumns.concat(v.vehicle_id, [prev, cols])
            data.append(self._vehicle_json(fleet, v, cols, types, plan, quirks, decorate))
        pagination = {"endCursor": encode_cursor(vpos, ts, qh) if more else "", "hasNextPage": more}
        # The vehicle entries are pre-rendered JSON fragments; splice them in without re-parsing.
        return b'{"data":[' + b",".join(data) + b'],"pagination":' + json_bytes(pagination) + b"}"

    def _vehicle_json(self, fleet: str, v: Vehicle, c: PingColumns, types: set[str], plan, quirks: Quirks,
                      decorate: bool) -> bytes:
        zone = home_zone(v.home.lat, v.home.lon) if quirks.local_offsets else None
        times = render_times(c.ts_ms, quirks, v.vehicle_id, zone)
        lat, lon, spd, hdg = c.lat.tolist(), c.lon.tolist(), c.speed_mph.tolist(), c.heading_deg.tolist()
        ints = quirks.ints_for_floats
        absent = quirks.picked("absent_optional", v.vehicle_id, c.ts_ms)
        north = quirks.picked("north_as_360", v.vehicle_id, c.ts_ms)
        # a device without a reading sends no odometer (sandbox/odometer.py): None, left out below
        odo = [None if np.isnan(x) else int(round(x * METERS_PER_MILE)) for x in c.odometer_mi.tolist()]
        order = list(range(len(times)))
        if plan.out_of_order and len(order) > 1 and \
                chance(plan.seed, "ooo", fleet, v.vehicle_id, times[0]) < plan.out_of_order:
            rng = np.random.default_rng(int(chance(plan.seed, "ooo-perm", fleet, v.vehicle_id, times[0]) * 2**32))
            order = rng.permutation(len(order)).tolist()
        gps = []
        strings = plan.numbers_as_strings
        extra = ',"isEcuSpeed":false,"gpsFixQuality":"3d"' if quirks.extra_fields else ""
        for i in order:
            dec = f',"decorations":{{"gpsOdometerMeters":{{"value":{odo[i]}}}}}' if decorate and odo[i] is not None \
                else ""
            if strings and chance(plan.seed, "str", fleet, v.vehicle_id, times[i]) < strings:
                heading = f',"headingDegrees":"{hdg[i]}"' if spd[i] > 0 else ""
                gps.append(f'{{"time":"{times[i]}","latitude":"{lat[i]}","longitude":"{lon[i]}"{heading},'
                           f'"speedMilesPerHour":"{spd[i]}"{dec}}}')
                continue
            head = f'{{"time":"{times[i]}","latitude":{lat[i]},"longitude":{lon[i]}'
            if absent[i]:
                gps.append(f"{head}{extra}{dec}}}")
            elif spd[i] > 0:
                heading = "360.0" if north[i] else num(hdg[i], ints)
                gps.append(f'{head},"headingDegrees":{heading},"speedMilesPerHour":{num(spd[i], ints)}{extra}{dec}}}')
            else:
                gps.append(f'{head},"speedMilesPerHour":{num(spd[i], ints)}{extra}{dec}}}')
        if plan.malformed and times and chance(plan.seed, "junk", fleet, v.vehicle_id, times[0]) < plan.malformed:
            gps.extend(_junk_samsara(times[0], lat[0], lon[0]))
        out = f'{{"id":"{v.vehicle_id}","name":"{v.name}"'
        if quirks.extra_fields:
            out += ',"externalIds":{"samsara.vin":"' + v.vin + '"}'
        out += f',"gps":[{",".join(gps)}]'
        if "gpsOdometerMeters" in types:
            if quirks.odometer_own_times:
                # The series runs on its own clock: readings near, not at, the GPS fixes.
                u = uniform(quirks.seed, "odometer-clock", v.vehicle_id, c.ts_ms)
                jitter = ((u - 0.5) * 2 * ODOMETER_JITTER_MS).astype(np.int64)
                otimes = render_times(c.ts_ms + jitter, quirks, v.vehicle_id, zone)
            else:
                otimes = times
            out += ',"gpsOdometerMeters":[' + ",".join(
                f'{{"time":"{otimes[i]}","value":{odo[i]}}}' for i in order if odo[i] is not None) + "]"
        return (out + "}").encode()


def _junk_samsara(time: str, lat: float, lon: float) -> list[str]:
    """Malformed records of the kinds real feeds carry. Each is an extra record, never a real ping."""
    decades_off = "1994" + time[4:]
    return [
        f'{{"time":"{time}","longitude":{lon},"speedMilesPerHour":12.0}}',  # latitude missing
        f'{{"time":"{time}","latitude":"NaN","longitude":{lon},"speedMilesPerHour":12.0}}',
        f'{{"time":"{time}","latitude":0.0,"longitude":0.0,"speedMilesPerHour":0.0}}',
        f'{{"time":"{decades_off}","latitude":{lat},"longitude":{lon},"speedMilesPerHour":30.0}}',
        f'{{"time":"{time}","latitude":{lat},"longitude":{lon},"speedMilesPerHour":"fast"}}',  # lands, speed null
        f'{{"time":"{time}","latitude":true,"longitude":{lon},"speedMilesPerHour":12.0}}',  # fails the typed decode
    ]


def _basic(request: Request) -> tuple[str | None, str | None]:
    """The client id and secret of an HTTP Basic header, or (None, None)."""
    import base64

    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, client_secret
        except (ValueError, UnicodeDecodeError):
            pass
    return None, None


def _redirect_error(redirect: str, error: str, state: str | None) -> Response:
    params = {"error": error, **({"state": state} if state else {})}
    return RedirectResponse(f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}", status_code=302)


def _s(value: object) -> str | None:
    return value if isinstance(value, str) else None
