"""The daemon's HTTP server: health, metrics, the OAuth callback, and a JSON API for other services.

Open: GET /healthz, /readyz, /openapi.json and the OAuth callback (a browser lands there; the
signed, single-use `state` is its credential). /metrics needs `Authorization: Bearer
<FLEETLAKE_METRICS_TOKEN>` when that is set (Prometheus: `authorization: {credentials_file: ...}`). Everything else needs `Authorization: Bearer
<FLEETLAKE_API_TOKEN>`; without a configured token the API refuses every request.
Errors are JSON `{"error": "..."}` with a 4xx status that says what was wrong, or a 503 when the
store, manifest or local disk failed; no answer (errors, fleets' errors, work records) carries a
store URL or a file path. /readyz probes each dependency with a deadline (`ingest.probes`).
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from common import names
from common.errors import (
    AuthError,
    ConfigError,
    ConsentRefused,
    DiskFull,
    FleetlakeError,
    InvalidName,
    ManifestError,
    StoreError,
    TspError,
    UnknownTsp,
)
from common.states import WorkKind
from ingest.fleets.offboarding import API_ACTOR
from ingest.fleets.offboarding import offboard as offboard_fleet
from ingest.runtime.app import App
from ingest.runtime.backoff import RetrySchedule
from ingest.runtime.pipeline import Pipeline
from ingest.runtime.probes import daemon_probes
from ingest.runtime.workqueue import Busy
from ingest.surfaces import api_models as m
from ingest.surfaces.api_models import answer
from ingest.surfaces.console.pages import console_routes
from ingest.surfaces.openapi import document as openapi_document

log = logging.getLogger("fleetlake.api")
UNKNOWN_FLEET = "unknown_fleet"  # the `code` of a 404 for a fleet id no fleet has (DaemonClient reads it)
Handler = Callable[[Request], Awaitable[Response]]


# Store URLs and absolute file paths: where fleetlake keeps things is no caller's business. A
# path after "GET " is the TSP's endpoint that failed (connectors/http.py), not one of ours.
_INTERNAL = re.compile(r"\b(?:file|s3)://\S*|(?<![\w:])(?<!GET )/(?:[\w.@+-]+/)+[\w.@+-]*")


def _error(status: int, message: str, code: str | None = None, **headers: str) -> JSONResponse:
    """An error answer: a line for a person and, where a client must tell cases apart, a stable `code`."""
    body = {"error": _INTERNAL.sub("<internal>", message), **({"code": code} if code else {})}
    return JSONResponse(m.Error(**body).model_dump(exclude_unset=True), status, headers=headers or None)


def _unknown_fleet(fleet_id: str) -> JSONResponse:
    return _error(404, f"unknown fleet {fleet_id}", code=UNKNOWN_FLEET)


def _scrubbed(value: Any) -> Any:
    """`value` (JSON-able) with every internal path or store URL in its strings replaced: fleets'
    errors and work records quote what failed, and a local error can quote a spool path."""
    if isinstance(value, str):
        return _INTERNAL.sub("<internal>", value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def create_app(app: App, pipeline: Pipeline | None = None,
               readiness: Callable[[], list[str]] | None = None, retries: RetrySchedule | None = None) -> Starlette:
    """`pipeline` queues work (without it, work requests answer 503: nothing here would run it);
    `readiness` names what keeps the daemon from working (for /readyz); `retries` is the daemon's
    backoff, read-only (the console says when failed work is tried again)."""
    settings = app.settings
    metrics = app.metrics
    queue = app.queue

    def authed(route: str, fn: Handler) -> Handler:
        async def wrapper(request: Request) -> Response:
            token = settings.api_token.get_secret_value() if settings.api_token else None
            given = request.headers.get("authorization", "")
            resp: Response
            if token is None:
                resp = _error(401, "the JSON API is disabled: set FLEETLAKE_API_TOKEN", **{"WWW-Authenticate": "Bearer"})
            elif not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
                resp = _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
            else:
                try:
                    resp = await fn(request)
                except InvalidName as e:
                    resp = _error(400, str(e))
            metrics.api_requests.labels(route, str(resp.status_code)).inc()
            return resp
        return wrapper

    def known(fleet_id: str) -> bool:
        with app.manifest.reading() as m:
            return m.fleet(fleet_id) is not None

    def fleet_param(request: Request) -> str:
        return names.fleet_id(request.path_params["fleet_id"])

    async def healthz(request: Request) -> Response:
        return JSONResponse(answer(m.Health, {"status": "ok"}))

    probes = daemon_probes(app)

    async def readyz(request: Request) -> Response:
        problems = await probes.problems()  # within about FLEETLAKE_READYZ_TIMEOUT_S, whatever hangs
        if readiness is not None:
            problems.extend(readiness())
        return JSONResponse(answer(m.Ready, {"ready": not problems, "problems": _scrubbed(problems)}),
                            503 if problems else 200)

    async def metrics_view(request: Request) -> Response:
        # Metrics name customer fleets: with a metrics token set, only a scraper holding it reads them.
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        given = request.headers.get("authorization", "")
        if token is not None and not (given.startswith("Bearer ")
                                      and hmac.compare_digest(given[7:].encode(), token.encode())):
            return _error(401, "missing or wrong metrics token", **{"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)  # built once, at import: the operations and models do not change

    async def callback(request: Request) -> Response:
        tsp = request.path_params["tsp"]
        q = request.query_params
        if tsp not in app.endpoints:
            return _error(404, f"unknown or unconfigured TSP {tsp[:40]!r}")
        if error := q.get("error"):
            return _error(400, f"the fleet did not grant consent: {error[:200]}")
        if not q.get("code") or not q.get("state"):
            return _error(400, "the callback needs `code` and `state`")
        try:
            fleet_id = await run_in_threadpool(app.onboarding.complete_consent, tsp, q["code"], q["state"])
        except AuthError as e:
            return _error(400, str(e))
        except (TspError, ConfigError) as e:
            return _error(502, f"could not complete the consent with {tsp}: {e}")
        queued = pipeline.consented(fleet_id) if pipeline is not None else False
        return HTMLResponse(f"<p>Fleet <b>{fleet_id}</b> is connected to fleetlake through {tsp}."
                            f"{' Its backfill has started.' if queued else ''}</p>")

    async def list_fleets(request: Request) -> Response:
        fleets = await run_in_threadpool(app.reads.fleets)
        return JSONResponse([answer(m.Fleet, _scrubbed(f.to_json())) for f in fleets])

    async def fleet_status(request: Request) -> Response:
        fid = fleet_param(request)
        try:
            grid = await run_in_threadpool(app.reads.status, fid)
            return JSONResponse(answer(m.FleetStatusOut, _scrubbed(grid.to_json())))
        except KeyError:
            return _unknown_fleet(fid)

    async def fleet_readiness(request: Request) -> Response:
        fid = fleet_param(request)
        try:
            ready = await run_in_threadpool(app.reads.readiness, fid)
            return JSONResponse(answer(m.ReadinessOut, ready.to_json()))
        except KeyError:
            return _unknown_fleet(fid)

    async def fleet_features(request: Request) -> Response:
        fid = fleet_param(request)
        month = request.query_params.get("month")
        if month is not None:
            names.month(month)
        try:
            feats = await run_in_threadpool(app.reads.features, fid, month)
            return JSONResponse(answer(m.FleetFeaturesOut, feats.to_json()))
        except KeyError:
            return _unknown_fleet(fid)

    async def fleet_quote(request: Request) -> Response:
        fid = fleet_param(request)
        try:
            quote = await run_in_threadpool(app.reads.quote, fid)
        except KeyError:
            return _unknown_fleet(fid)
        if quote is None:
            return _error(404, f"no quote yet for fleet {fid}: its quote window has not been computed", "no_quote")
        return JSONResponse(answer(m.QuoteOut, quote.to_json()))

    def queue_for(kind: WorkKind) -> Handler:
        async def handler(request: Request) -> Response:
            fid = fleet_param(request)
            if not await run_in_threadpool(known, fid):
                return _unknown_fleet(fid)
            if pipeline is None or not queue.accepting:
                return _error(503, "not taking work (shutting down)")
            queued = pipeline.backfill(fid) if kind is WorkKind.BACKFILL else pipeline.refresh(fid)
            return JSONResponse(answer(m.Queued, {"fleet_id": fid, "work": kind.value, "queued": queued,
                                                  "note": None if queued else "already queued"}), 202)
        return handler

    async def refresh_all(request: Request) -> Response:
        if pipeline is None or not queue.accepting:
            return _error(503, "not taking work (shutting down)")
        return JSONResponse(answer(m.Queued, {"work": WorkKind.REFRESH.value, "queued": pipeline.refresh()}), 202)

    async def connect(request: Request) -> Response:
        tsp = request.path_params["tsp"]
        fid = names.fleet_id(request.query_params.get("fleet_id", ""))
        relink = request.query_params.get("relink", "false").lower()
        if relink not in ("true", "false"):
            return _error(400, "relink must be true or false")
        try:
            url = await run_in_threadpool(app.onboarding.consent_url, tsp, fid, relink == "true")
        except ConsentRefused as e:
            return _error(409, str(e))
        except UnknownTsp as e:
            return _error(404, str(e), code="unknown_tsp")
        return JSONResponse(answer(m.ConsentLink, {"tsp": tsp, "fleet_id": fid, "relink": relink == "true",
                                                   "consent_url": url}))

    async def offboard(request: Request) -> Response:
        # Refused, not queued behind running work: an operator asked for it and waits for the answer.
        fid = fleet_param(request)
        operator = request.query_params.get("operator", "").strip()[:80]
        actor = f"{operator} via {API_ACTOR}" if operator else API_ACTOR
        if not await run_in_threadpool(known, fid):
            return _unknown_fleet(fid)
        try:
            with queue.exclusive(fid):
                outcome = await run_in_threadpool(offboard_fleet, app, fid, actor)
        except Busy as e:
            return _error(409, f"fleet {fid} has work queued or running ({e}); nothing was removed. "
                               "Off-board it when GET /work shows that work finished")
        except KeyError:
            return _unknown_fleet(fid)
        except AuthError as e:
            return _error(502, f"the TSP did not confirm the revocation, so nothing was removed: {e}")
        return JSONResponse(answer(m.Offboarded, outcome.to_json()))

    async def work_state(request: Request) -> Response:
        return JSONResponse(answer(m.WorkState, _scrubbed(queue.snapshot().to_json())))

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_view, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/oauth/{tsp}/callback", callback, methods=["GET"]),
        Route("/fleets", authed("fleets", list_fleets), methods=["GET"]),
        Route("/fleets/{fleet_id}", authed("offboard", offboard), methods=["DELETE"]),
        Route("/fleets/{fleet_id}/status", authed("status", fleet_status), methods=["GET"]),
        Route("/fleets/{fleet_id}/features", authed("features", fleet_features), methods=["GET"]),
        Route("/fleets/{fleet_id}/readiness", authed("readiness", fleet_readiness), methods=["GET"]),
        Route("/fleets/{fleet_id}/quote", authed("quote", fleet_quote), methods=["GET"]),
        Route("/fleets/{fleet_id}/backfill", authed("backfill", queue_for(WorkKind.BACKFILL)), methods=["POST"]),
        Route("/fleets/{fleet_id}/refresh", authed("refresh", queue_for(WorkKind.REFRESH)), methods=["POST"]),
        Route("/refresh", authed("refresh_all", refresh_all), methods=["POST"]),
        Route("/connect/{tsp}", authed("connect", connect), methods=["POST"]),
        Route("/work", authed("work", work_state), methods=["GET"]),
        *console_routes(app, pipeline, retries=retries),  # the web console at / (its own login; ingest/console)
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        # Anything unexpected: logged with its type, answered without internals.
        if isinstance(exc, DiskFull):  # names the directory by its setting, never by its path
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
            return _error(503, str(exc))
        if isinstance(exc, (StoreError, ManifestError, OSError)):
            # Our storage failed, not the request: the details (keys, paths) go to the log only.
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
            what = "manifest" if isinstance(exc, ManifestError) else "object store"
            return _error(503, f"the {what} could not be read ({type(exc).__name__}); the daemon's log has details")
        if isinstance(exc, FleetlakeError):
            return _error(400, str(exc))
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal error")

    return Starlette(routes=routes, exception_handlers={Exception: on_error})


OPENAPI: dict[str, Any] = openapi_document()
