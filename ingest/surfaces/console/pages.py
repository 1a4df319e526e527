"""The console's pages and form posts, on the daemon's own Starlette app.

GET /: the fleets; /ui/fleets/{id}: the month x flow grid and work log (?flow=&month=: one cell's
runs); /ui/fleets/{id}/features (and .csv): the plots. POST /ui/login, /ui/logout, /ui/connect,
/ui/fleets/{id}/backfill|refresh|rerun.
Every page but the login needs a session; every POST needs our Origin and a CSRF token. Failed
logins are slowed and locked (ingest.surfaces.console.throttle), counted in fleetlake_console_logins and
logged with the client's address, never the password. Pages
call the same app parts the JSON API calls and read the manifest; only the features page reads
Parquet (one fleet's feature tables).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
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
from common.months import month_of_ms
from common.states import WorkKind
from ingest.reads.views import FleetGrid
from ingest.runtime.app import App
from ingest.runtime.backoff import RetrySchedule
from ingest.runtime.pipeline import Pipeline
from ingest.runtime.workqueue import Work
from ingest.surfaces.console import book, featuredata, plots
from ingest.surfaces.console.session import COOKIE, Session, Sessions
from ingest.surfaces.console.throttle import Outcome, Refused, Throttle
from partitions.manifest import RunAttempt, RunLine

log = logging.getLogger("fleetlake.console")
Page = Callable[[Request, Session], Awaitable[Response]]

# Scripts and styles only from our own origin: an injected tag could not run, and the session
# cookie cannot leave (HttpOnly). No framing: a click cannot be hijacked.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                      "form-action 'self'; base-uri 'none'",
           "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-store"}


def ago(dt: datetime | None, now: datetime | None = None) -> str:
    """How long ago `dt` was, for a person: "just now", "5 min ago", "3 h ago", "12 days ago"."""
    if not isinstance(dt, datetime):
        return "never"
    s = ((now or datetime.now(timezone.utc)) - dt).total_seconds()
    if s < 60:
        return "just now"
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min")):
        if s >= size or unit == "min":
            n = int(s // size)
            return f"{n} {'day' if unit == 'days' and n == 1 else unit} ago"
    raise AssertionError  # unreachable: the loop returns at "min"


def until(dt: datetime | None, now: datetime | None = None) -> str:
    """How long until `dt`: "in 12 min", "in 3 h", or "due" once it has passed."""
    if not isinstance(dt, datetime):
        return ""
    s = (dt - (now or datetime.now(timezone.utc))).total_seconds()
    if s <= 0:
        return "due"
    return f"in {math.ceil(s / 60)} min" if s < 5400 else f"in {s / 3600:.0f} h"


def duration(seconds: float | None) -> str:
    """A run's length: "0.4 s", "12 s", "3 min 4 s"."""
    if seconds is None:
        return "\u2014"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("ingest.surfaces.console", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["when"] = lambda dt: dt.strftime("%Y-%m-%d %H:%M UTC") if isinstance(dt, datetime) else "\u2014"
    env.filters["count"] = lambda n: f"{n:,}"
    env.filters["ago"] = ago
    env.filters["until"] = until
    env.filters["duration"] = duration
    env.globals["svg"] = plots.render
    env.globals["legend"] = plots.legend
    return env


MAX_FORM_BYTES = 16 * 1024
RERUN_SCOPES = ("window", "month", "flow")  # a grid cell's window; every flow of its month; its flow in every month


def attachment(filename: str) -> str:
    """A Content-Disposition naming `filename` whatever it holds (RFC 6266): an ASCII fallback for
    old clients and the exact name as UTF-8 (RFC 5987). A name from a query parameter may hold CR,
    LF or any character; neither form lets one through raw."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


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


def console_routes(app: App, pipeline: Pipeline | None, throttle: Throttle | None = None,
                   retries: RetrySchedule | None = None) -> list[BaseRoute]:
    """`throttle` slows and locks failed logins (ingest.surfaces.console.throttle; its default rule unless given);
    `retries` says when the daemon retries failed work (its backoff, read-only; None: no daemon retries here)."""
    sessions = Sessions(app.settings)
    throttle = throttle or Throttle()
    logins = app.metrics.console_logins
    env = _env()

    def html(template: str, request: Request, session: Session | None, status: int = 200,
             headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        body = env.get_template(template).render(
            request=request, csrf=sessions.csrf(session) if session else "", logged_in=session is not None,
            proxy_user=session.proxy_user if session else None, **context)
        return HTMLResponse(body, status, headers={**HEADERS, **(headers or {})})

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
            if not sessions.same_origin(request):
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
        ok = value and value.startswith("/") and not value.startswith(("//", "/ui/login"))
        return value if ok and value else "/"

    def login_page(request: Request, target: str, status: int = 200, **context: Any) -> HTMLResponse:
        headers = {"Retry-After": str(math.ceil(context["retry_after"]))} if context.get("retry_after") else None
        return html("login.html", request, None, status, headers, next=target, enabled=sessions.enabled,
                    **({"failed": False, "retry_after": None, "locked": False} | context))

    async def login_form(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if sessions.proxy_session(request) is not None:
            return RedirectResponse(target, 303, headers=HEADERS)  # the proxy has signed the user in
        return login_page(request, target)

    async def login(request: Request) -> Response:
        if not sessions.same_origin(request):
            return PlainTextResponse("cross-site request refused", 403, headers=HEADERS)
        form = await form_fields(request)
        target = safe_next(form.get("next", "/"))
        if not sessions.enabled:
            return login_page(request, target, 403)  # the page names the setting to set
        client = sessions.proxies.client(request)
        verdict = throttle.attempt(client)
        if isinstance(verdict, Refused):
            logins.labels(verdict.outcome.value).inc()
            return login_page(request, target, 429, retry_after=verdict.retry_after_s,
                              locked=verdict.outcome is Outcome.LOCKED)
        if verdict.locked_s:
            log.warning("console: client %s locked out of the login for %d s after %d failed logins",
                        client, verdict.locked_s, verdict.failures)
        if verdict.delay_s:
            await asyncio.sleep(verdict.delay_s)  # slows a guesser; holds no thread
        ok = sessions.check_password(form.get("password", ""))
        throttle.finished(verdict, ok)
        logins.labels((Outcome.OK if ok else Outcome.FAILED).value).inc()
        if not ok:
            log.warning("console: failed login from %s (%d in a row)", client, verdict.failures)
            return login_page(request, target, 401, failed=True)
        log.info("console: login from %s", client)
        _, cookie = sessions.new()
        resp = RedirectResponse(target, 303, headers=HEADERS)
        resp.set_cookie(value=cookie, **sessions.cookie_args())  # type: ignore[arg-type]
        return resp

    async def logout(request: Request, session: Session) -> Response:
        if session.proxy_user is not None:  # signed in by the proxy: signing out is the proxy's business
            return html("error.html", request, session, 400, message="you are signed in by your proxy as "
                        f"{session.proxy_user}: sign out there")
        sessions.end(session)
        resp = RedirectResponse("/ui/login", 303, headers=HEADERS)
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    # ------------------------------------------------------------------ pages
    async def fleets(request: Request, session: Session) -> Response:
        rows = book.fleet_book(await run_in_threadpool(app.reads.book), now(), retries)
        return html("fleets.html", request, session, fleets=rows, tsps=sorted(app.endpoints),
                    statuses=sorted({r.status for r in rows}), thresholds=sorted(set(app.settings.readiness_months)),
                    daemon=retries is not None)

    async def connect(request: Request, session: Session) -> Response:
        form: dict[str, str] = request.state.form
        tsp, fid = form.get("tsp", ""), names.fleet_id(form.get("fleet_id", ""))
        relink = form.get("relink") == "on"
        try:
            url = await run_in_threadpool(app.onboarding.consent_url, tsp, fid, relink)
        except (ConsentRefused, ConfigError, UnknownTsp) as e:
            return html("connect.html", request, session, 409, fleet_id=fid, tsp=tsp, url=None, error=str(e))
        return html("connect.html", request, session, fleet_id=fid, tsp=tsp, url=url, error=None)

    def active_flows() -> dict[str, tuple[str, int]]:
        return {f"{f.name}@{f.version}": (f.name, f.version) for f in app.flows if not f.upstream}  # month flows

    async def fleet(request: Request, session: Session) -> Response:
        fid = names.fleet_id(request.path_params["fleet_id"])
        flow_key, month = request.query_params.get("flow"), request.query_params.get("month")
        cell = None
        if flow_key or month:  # one grid cell opened: its runs
            if not (flow_key and month) or flow_key not in active_flows():
                return html("error.html", request, session, 404,
                            message=f"no active flow {str(flow_key)[:80]!r} in month {str(month)[:10]!r}")
            cell = (*active_flows()[flow_key], names.month(month))

        def load() -> tuple[FleetGrid, set[tuple[str, int, str]], list[RunLine], list[RunAttempt] | None]:
            recomputed, runs = app.reads.work_log(fid)
            return (app.reads.status(fid), recomputed, runs,
                    app.reads.window_runs(fid, *cell) if cell is not None else None)
        grid, recomputed, runs, attempts = await run_in_threadpool(load)
        snap = app.queue.snapshot()
        mine = (lambda key: key.endswith(f":{fid}") or key.endswith(":*") or f":{fid}:" in key)
        work_lines = [] if snap is None else (
            [(k, "running") for k in snap.running_all if mine(k)]
            + [(k, "queued") for k in snap.queued if mine(k)]
            + [(k, str(v)) for k, v in sorted(snap.last.items()) if mine(k)])
        retry = (lambda kind: retries.next_retry(Work(kind, fid).key) if retries is not None else None)
        rerun = request.query_params.get("rerun", "")
        return html("fleet.html", request, session, grid=grid, flows=list(active_flows()), recomputed=recomputed,
                    runs=runs, work_lines=work_lines, queued=request.query_params.get("queued"),
                    open_month=month_of_ms(app.clock.now_ms()), cell=cell, cell_flow=flow_key, attempts=attempts,
                    pull_retry=retry(WorkKind.BACKFILL), features_retry=retry(WorkKind.FEATURES),
                    rerun=int(rerun) if rerun.isdigit() else None,
                    rerun_scope=request.query_params.get("scope") if request.query_params.get("scope") in RERUN_SCOPES
                    else None, daemon=retries is not None)

    async def rerun(request: Request, session: Session) -> Response:
        """Re-run one window, every flow of a month, or one flow in every month (`Pipeline.rerun`)."""
        fid = names.fleet_id(request.path_params["fleet_id"])
        form: dict[str, str] = request.state.form
        await run_in_threadpool(app.reads.fleet, fid)  # KeyError: 404
        scope = form.get("scope", "")
        flow_key, month = form.get("flow", ""), form.get("month", "")
        if scope not in RERUN_SCOPES or flow_key not in active_flows():
            return html("error.html", request, session, 400, message="a re-run names an active flow, a month and "
                        "what to re-run: this window, every flow of the month, or the flow in every month")
        names.month(month)
        if pipeline is None or not app.queue.accepting:
            return html("error.html", request, session, 503, message="the daemon is not taking work")
        flows = list(active_flows().values()) if scope == "month" else [active_flows()[flow_key]]
        by = f"console ({session.proxy_user})" if session.proxy_user else "console"
        set_aside, queued = await run_in_threadpool(pipeline.rerun, fid, flows, None if scope == "flow" else month,
                                                    by)
        log.info("console: re-run of fleet %s (%s %s, %s) asked: %d runs set aside, work %s", fid, flow_key, month,
                 scope, set_aside, "queued" if queued else "already queued")
        back = f"/ui/fleets/{fid}?flow={quote(flow_key, safe='@')}&month={month}&rerun={set_aside}&scope={scope}"
        return RedirectResponse(back + "#window", 303, headers=HEADERS)

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

    async def feature_data(request: Request, session: Session) -> featuredata.FeaturePage | Response:
        """The plots of the fleet (or its ?vehicle=), or a 404 page for a vehicle it has no features of."""
        fid = names.fleet_id(request.path_params["fleet_id"])
        vehicle = request.query_params.get("vehicle") or None
        await run_in_threadpool(app.reads.fleet, fid)
        data = await run_in_threadpool(featuredata.build, app, fid, vehicle)
        if vehicle is not None and vehicle not in data.vehicles:  # a typo, or anything a link can carry
            return html("error.html", request, session, 404,
                        message=f"fleet {fid} has no features of a vehicle {vehicle[:80]!r}")
        return data

    async def features(request: Request, session: Session) -> Response:
        data = await feature_data(request, session)
        if isinstance(data, Response):
            return data
        return html("features.html", request, session, data=data)

    async def quote_page(request: Request, session: Session) -> Response:
        """The fleet's quote summary as a page an underwriter prints and attaches to a file."""
        fid = names.fleet_id(request.path_params["fleet_id"])
        q = await run_in_threadpool(app.reads.quote, fid)  # KeyError: 404
        return html("quote.html", request, session, fleet_id=fid, quote=q)

    async def features_csv(request: Request, session: Session) -> Response:
        data = await feature_data(request, session)
        if isinstance(data, Response):
            return data
        name = f"{data.fleet_id}-{data.vehicle or 'fleet'}-features.csv"
        return Response(data.csv(), media_type="text/csv; charset=utf-8",
                        headers={**HEADERS, "Content-Disposition": attachment(name)})

    return [
        Route("/", page(fleets), methods=["GET"]),
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", post(logout), methods=["POST"]),
        Route("/ui/connect", post(connect), methods=["POST"]),
        Route("/ui/fleets/{fleet_id}", page(fleet), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/features", page(features), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/features.csv", page(features_csv), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/quote", page(quote_page), methods=["GET"]),
        Route("/ui/fleets/{fleet_id}/backfill", post(queue(WorkKind.BACKFILL)), methods=["POST"]),
        Route("/ui/fleets/{fleet_id}/refresh", post(queue(WorkKind.REFRESH)), methods=["POST"]),
        Route("/ui/fleets/{fleet_id}/rerun", post(rerun), methods=["POST"]),
        Mount("/ui/static", StaticFiles(packages=[("ingest.surfaces.console", "static")]), name="console-static"),
    ]

