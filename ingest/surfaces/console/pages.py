"""The console's pages and form posts, on the daemon's own Starlette app.

GET /: the fleets; /ui/fleets/{id}: the month x flow grid and work log; /ui/fleets/{id}/features
(and .csv): the plots. POST /ui/login, /ui/logout, /ui/connect, /ui/fleets/{id}/backfill|refresh.
Every page but the login needs a session; every POST needs our Origin and a CSRF token. Pages
call the same app parts the JSON API calls and read the manifest; only the features page reads
Parquet (one fleet's feature tables).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from common import names
from common.errors import ConfigError, ConsentRefused, InvalidName, UnknownTsp
from common.states import WorkKind
from ingest.runtime.app import App
from ingest.runtime.pipeline import Pipeline
from ingest.surfaces.console import book, featuredata, plots
from ingest.surfaces.console.session import COOKIE, Session, Sessions, same_origin

log = logging.getLogger("fleetlake.console")
Page = Callable[[Request, Session], Awaitable[Response]]

# Scripts and styles only from our own origin: an injected tag could not run, and the session
# cookie cannot leave (HttpOnly). No framing: a click cannot be hijacked.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                      "form-action 'self'; base-uri 'none'",
           "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-store"}


def _env() -> Environment:
    env = Environment(loader=PackageLoader("ingest.surfaces.console", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["when"] = lambda dt: dt.strftime("%Y-%m-%d %H:%M UTC") if isinstance(dt, datetime) else "\u2014"
    env.filters["count"] = lambda n: f"{n:,}"
    env.globals["svg"] = plots.render
    env.globals["legend"] = plots.legend
    return env


MAX_FORM_BYTES = 16 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the console posts nothing else; Starlette's parser would need
    python-multipart for that). A body over 16 KiB or of another type reads as empty: then the
    CSRF token is missing and the post is refused."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def console_routes(app: App, pipeline: Pipeline | None) -> list[BaseRoute]:
    sessions = Sessions(app.settings)
    env = _env()

    def html(template: str, request: Request, session: Session | None, status: int = 200,
             **context: Any) -> HTMLResponse:
        body = env.get_template(template).render(
            request=request, csrf=sessions.csrf(session) if session else "", logged_in=session is not None,
            **context)
        return HTMLResponse(body, status, headers=HEADERS)

    def page(fn: Page) -> Callable[[Request], Awaitable[Response]]:
        async def wrapper(request: Request) -> Response:
            session = sessions.read(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303, headers=HEADERS)
            try:
                return await fn(request, session)
            except InvalidName as e:
                return html("error.html", request, session, 400, message=str(e))
            except KeyError:
                return html("error.html", request, session, 404, message="no such fleet")
        return wrapper

    def post(fn: Page) -> Callable[[Request], Awaitable[Response]]:
        """A state-changing form: a session, our own origin and the session's CSRF token, or 403."""
        async def wrapper(request: Request) -> Response:
            session = sessions.read(request)
            if session is None:
                return PlainTextResponse("log in first", 403, headers=HEADERS)
            if not same_origin(request):
                log.warning("console: refused a cross-origin POST to %s", request.url.path)
                return PlainTextResponse("cross-site request refused", 403, headers=HEADERS)
            form = request.state.form = await form_fields(request)
            if not sessions.check_csrf(session, form.get("csrf", "")):
                log.warning("console: refused a POST to %s without a valid CSRF token", request.url.path)
                return PlainTextResponse("missing or wrong CSRF token", 403, headers=HEADERS)
            return await page(fn)(request)
        return wrapper

    def now() -> datetime:
        return datetime.fromtimestamp(app.clock.now_ms() / 1000, timezone.utc)

    # ------------------------------------------------------------------ login
    def safe_next(value: str | None) -> str:
        # Only a path on this site: a login link must not bounce the user elsewhere.
        return value if value and value.startswith("/") and not value.startswith("//") else "/"

    async def login_form(request: Request) -> Response:
        return html("login.html", request, None, next=safe_next(request.query_params.get("next")),
                    enabled=sessions.enabled, failed=False)

    async def login(request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("cross-site request refused", 403, headers=HEADERS)
        form = await form_fields(request)
        target = safe_next(form.get("next", "/"))
        if not sessions.check_password(form.get("password", "")):
            log.warning("console: a failed login")
            return html("login.html", request, None, 401, next=target, enabled=sessions.enabled, failed=True)
        _, cookie = sessions.new()
        resp = RedirectResponse(target, 303, headers=HEADERS)
        resp.set_cookie(value=cookie, **sessions.cookie_args())  # type: ignore[arg-type]
        return resp

    async def logout(request: Request, session: Session) -> Response:
        sessions.end(session)
        resp = RedirectResponse("/ui/login", 303, headers=HEADERS)
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    # ------------------------------------------------------------------ pages
    async def fleets(request: Request, session: Session) -> Response:
        rows = await run_in_threadpool(lambda: book.fleet_book(app.manifest, now()))
        return html("fleets.html", request, session, fleets=rows, tsps=sorted(app.endpoints),
                    statuses=sorted({r.status for r in rows}))

    async def connect(request: Request, session: Session) -> Response:
        form: dict[str, str] = request.state.form
        tsp, fid = form.get("tsp", ""), names.fleet_id(form.get("fleet_id", ""))
        relink = form.get("relink") == "on"
        try:
            url = await run_in_threadpool(app.onboarding.consent_url, tsp, fid, relink)
        except (ConsentRefused, ConfigError, UnknownTsp) as e:
            return html("connect.html", request, session, 409, fleet_id=fid, tsp=tsp, url=None, error=str(e))
        return html("connect.html", request, session, fleet_id=fid, tsp=tsp, url=url, error=None)

    async def fleet(request: Request, session: Session) -> Response:
        fid = names.fleet_id(request.path_params["fleet_id"])

        def load() -> tuple[Any, set[tuple[str, int, str]], list[book.RunLine]]:
            return (app.reads.status(fid), book.recomputed_windows(app.manifest, fid),
                    book.recent_runs(app.manifest, fid))
        grid, recomputed, runs = await run_in_threadpool(load)
        snap = app.queue.snapshot()
        mine = (lambda key: key.endswith(f":{fid}") or key.endswith(":*"))
        work_lines = [] if snap is None else (
            [(k, "running") for k in ([snap.running] if snap.running and mine(snap.running) else [])]
            + [(k, "queued") for k in snap.queued if mine(k)]
            + [(k, str(v)) for k, v in sorted(snap.last.items()) if mine(k)])
        flows = [f"{f.name}@{f.version}" for f in app.flows]
        return html("fleet.html", request, session, grid=grid, flows=flows, recomputed=recomputed, runs=runs,
                    work_lines=work_lines, queued=request.query_params.get("queued"))

    def queue(kind: WorkKind) -> Page:
        async def handler(request: Request, session: Session) -> Response:
            fid = names.fleet_id(request.path_params["fleet_id"])
            await run_in_threadpool(app.reads.fleet, fid)  # KeyError: 404
            if pipeline is None or not app.queue.accepting:
                return html("error.html", request, session, 503, message="the daemon is not taking work")
            queued = pipeline.backfill(fid) if kind is WorkKind.BACKFILL else pipeline.refresh(fid)
            note = kind.value if queued else f"{kind.value}-already-queued"
            return RedirectResponse(f"/ui/fleets/{fid}?queued={note}", 303, headers=HEADERS)
        return handler

    async def features(request: Request, session: Session) -> Response:
        fid = names.fleet_id(request.path_params["fleet_id"])
        vehicle = request.query_params.get("vehicle") or None
        await run_in_threadpool(app.reads.fleet, fid)
        data = await run_in_threadpool(featuredata.build, app, fid, vehicle)
        return html("features.html", request, session, data=data)

    async def features_csv(request: Request, session: Session) -> Response:
        fid = names.fleet_id(request.path_params["fleet_id"])
        vehicle = request.query_params.get("vehicle") or None
        await run_in_threadpool(app.reads.fleet, fid)
        data = await run_in_threadpool(featuredata.build, app, fid, vehicle)
        name = f"{fid}-{vehicle or 'fleet'}-features.csv".replace('"', "")
        return Response(data.csv(), media_type="text/csv; charset=utf-8",
                        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})

    return [
        Route("/", page(fleets), methods=["GET"]),
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", post(logout), methods=["POST"]),
        Route("/ui/connect", post(connect), methods=["POST"]),
        Route("/ui/fleets/{fleet_id}", page(fleet), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/features", page(features), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/features.csv", page(features_csv), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/backfill", post(queue(WorkKind.BACKFILL)), methods=["POST"]),
        Route("/ui/fleets/{fleet_id}/refresh", post(queue(WorkKind.REFRESH)), methods=["POST"]),
        Mount("/ui/static", StaticFiles(packages=[("ingest.surfaces.console", "static")]), name="console-static"),
    ]

