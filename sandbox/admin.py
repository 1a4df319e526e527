"""Sandbox-only control routes (`/_sandbox/...`): the clock, faults, quirks, consent revocation.

They exist on both fake servers and act on the shared world. They are how tests and the demo
"advance one month" or "revoke a fleet's consent" over HTTP, like a person using the TSP's UI.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultPlan
from sandbox.quirks import Quirks
from sandbox.world import TSPS, SandboxWorld


def admin_routes(world: SandboxWorld) -> list[Route]:
    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await _json(request)
                if "now" in body:
                    world.clock.set(datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00")))
                if "advance_seconds" in body:
                    world.clock.advance(float(body["advance_seconds"]))
                if "advance_months" in body:
                    world.clock.advance_months(int(body["advance_months"]))
            except (TypeError, ValueError) as e:
                return JSONResponse({"message": f"bad clock request: {e}"}, 400)
        return JSONResponse({"now": world.clock.now().isoformat().replace("+00:00", "Z"),
                             "now_ms": world.clock.now_ms()})

    async def faults(request: Request) -> Response:
        tsp = request.path_params["tsp"]
        if tsp not in TSPS:
            return JSONResponse({"message": f"unknown TSP {tsp!r}"}, 404)
        if request.method == "POST":
            try:
                world.set_faults(tsp, FaultPlan.from_dict(await _json(request)))
            except (TypeError, ValueError) as e:
                return JSONResponse({"message": str(e)}, 400)
        return JSONResponse(world.faults[tsp].as_dict())

    async def quirks(request: Request) -> Response:
        fleet = request.path_params["fleet"]
        if fleet not in world.fleets:
            return JSONResponse({"message": f"unknown fleet {fleet!r}"}, 404)
        if request.method == "POST":
            try:
                world.set_quirks(fleet, Quirks.from_dict(await _json(request)))
            except (TypeError, ValueError) as e:
                return JSONResponse({"message": str(e)}, 400)
        return JSONResponse(world.quirks[fleet].as_dict())

    async def fleets(request: Request) -> Response:
        return JSONResponse([{"fleet_id": f.spec.fleet_id, "tsp": f.tsp, "name": f.name,
                              "vehicles": f.spec.n_vehicles,
                              "history_start": f.spec.history_start.isoformat().replace("+00:00", "Z")}
                             for f in world.fleets.values()])

    async def revoke(request: Request) -> Response:
        fleet = request.path_params["fleet"]
        if fleet not in world.fleets:
            return JSONResponse({"message": f"unknown fleet {fleet!r}"}, 404)
        world.authorities[world.fleets[fleet].tsp].revoke(fleet)
        return JSONResponse({"fleet_id": fleet, "consent": "revoked"})

    async def api_key(request: Request) -> Response:
        fleet = request.path_params["fleet"]
        if fleet not in world.fleets:
            return JSONResponse({"message": f"unknown fleet {fleet!r}"}, 404)
        return JSONResponse({"fleet_id": fleet, "api_key": world.authorities[world.fleets[fleet].tsp].api_key(fleet)})

    async def apps(request: Request) -> Response:
        # The sandbox's OAuth app credentials, so a daemon pointed at the sandbox needs no setup.
        # Only a fake server may hand these out.
        base = str(request.base_url).rstrip("/")
        return JSONResponse({tsp: {"client_id": cid, "client_secret": secret, "api_url": f"{base}/{tsp}",
                                   "auth_url": f"{base}/{tsp}"}
                             for tsp, (cid, secret) in world.credentials.items()})

    async def stats(request: Request) -> Response:
        return JSONResponse({**world.stats, "revocations": {t: a.revocations for t, a in world.authorities.items()},
                             "grants": {t: a.grants for t, a in world.authorities.items()}})

    return [
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/faults/{tsp}", faults, methods=["GET", "POST"]),
        Route("/_sandbox/quirks/{fleet}", quirks, methods=["GET", "POST"]),
        Route("/_sandbox/fleets", fleets, methods=["GET"]),
        Route("/_sandbox/fleets/{fleet}/revoke", revoke, methods=["POST"]),
        Route("/_sandbox/fleets/{fleet}/api-key", api_key, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/apps", apps, methods=["GET"]),
    ]


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body
