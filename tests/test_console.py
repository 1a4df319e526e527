"""The web console's gate, over real HTTP (uvicorn on a free port): who gets in, what is refused.

No browser here (tests/test_console_browser.py drives one): these requests are what an attacker
could send by hand, a forged cookie, a cross-site form, a replayed cookie after logout.
"""

from __future__ import annotations

import base64
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.states import FleetStatus
from ingest.flows.registry import active_flows
from ingest.runtime.app import build_app
from ingest.runtime.daemon import Daemon
from ingest.surfaces.api import create_app
from ingest.surfaces.console.featuredata import Plot, Point, Series
from ingest.surfaces.console.plots import render
from ingest.surfaces.console.session import COOKIE
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.store import LocalStore
from tests.support.ports import free_port
from tests.test_api import _serve

PASSWORD = "console-pass-" + "y" * 12
TOKEN = "console-api-token-" + "z" * 12


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Daemon]]:
    settings = load_settings(data_dir=tmp_path, api_token=SecretStr(TOKEN), console_password=SecretStr(PASSWORD),
                             token_key=SecretStr(Fernet.generate_key().decode()))
    manifest = Manifest(tmp_path / "m.duckdb")
    manifest.upsert_fleet("acme-freight", "samsara", FleetStatus.ACTIVE)
    manifest.upsert_fleet("bluebird-logistics", "motive", FleetStatus.FAILED, error="motive answered 503 three times")
    app = build_app(settings, manifest, LocalStore(tmp_path / "store"), {}, active_flows())
    daemon = Daemon(app)
    port = free_port()
    server, t = _serve(create_app(app, daemon.pipeline, daemon.problems), port)
    try:
        yield f"http://127.0.0.1:{port}", daemon
    finally:
        server.should_exit = True
        t.join(10)
        manifest.close()


@contextmanager
def _login(base: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/ui/login", data={"password": password, "next": "/"}, headers={"Origin": base})
        assert r.status_code == 303, r.text
        yield c


def _csrf(c: httpx.Client, page: str = "/") -> str:
    html = c.get(page).text
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


FLEET_PAGES = ["/", "/ui/fleets/acme-freight", "/ui/fleets/acme-freight/features",
               "/ui/fleets/acme-freight/features.csv"]


def test_every_page_without_a_session_goes_to_the_login_and_shows_no_fleet(console) -> None:
    base, _ = console
    for path in FLEET_PAGES:
        r = httpx.get(base + path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next="), path
        assert "acme" not in r.text
    login = httpx.get(base + "/ui/login")
    assert login.status_code == 200 and "acme" not in login.text and "bluebird" not in login.text
    assert httpx.get(base + "/healthz").status_code == 200  # health stays open


def test_the_password_or_the_api_token_logs_in_with_a_strict_httponly_cookie(console) -> None:
    base, _ = console
    r = httpx.post(base + "/ui/login", data={"password": "wrong", "next": "/"}, headers={"Origin": base})
    assert r.status_code == 401 and COOKIE not in r.headers.get("set-cookie", "")
    for secret in (PASSWORD, TOKEN):
        with _login(base, secret) as c:
            r = c.get("/")
            assert r.status_code == 200 and "acme-freight" in r.text and "bluebird-logistics" in r.text
    raw = httpx.post(base + "/ui/login", data={"password": PASSWORD}, headers={"Origin": base}).headers["set-cookie"]
    assert "HttpOnly" in raw and "SameSite=strict" in raw.replace("Strict", "strict") and "Path=/" in raw


def test_a_forged_or_tampered_session_cookie_is_refused(console) -> None:
    base, _ = console
    with _login(base) as c:
        real = c.cookies[COOKIE]
    body, sig = real.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    longer = base64.urlsafe_b64encode(json.dumps({**payload, "exp": int(time.time()) + 10**8}).encode()).decode()
    forged = [
        "x",
        f"{body}.{'A' * len(sig)}",                  # right payload, made-up signature
        f"{longer.rstrip('=')}.{sig}",               # extended expiry under the old signature
        f"{body}.",
        base64.urlsafe_b64encode(b'{"sid":"admin","exp":9999999999}').decode() + ".c2ln",
    ]
    for value in forged:
        r = httpx.get(base + "/", cookies={COOKIE: value})
        assert r.status_code == 303 and "acme" not in r.text, value
    assert httpx.get(base + "/", cookies={COOKIE: real}).status_code == 200  # the genuine one works


def test_a_cross_site_post_is_refused_without_the_token_or_from_another_origin(console) -> None:
    base, daemon = console
    with _login(base) as c:
        _refuse_cross_site_posts(base, daemon, c)


def _refuse_cross_site_posts(base: str, daemon: Daemon, c: httpx.Client) -> None:
    token = _csrf(c)
    url = "/ui/fleets/acme-freight/refresh"
    refused = [
        ({}, {"Origin": base}),                                   # no CSRF token
        ({"csrf": "0" * len(token)}, {"Origin": base}),           # a wrong one
        ({"csrf": token}, {"Origin": "https://evil.example"}),    # right token, another site
        ({"csrf": token}, {"Origin": "null"}),                    # a sandboxed or file:// page
        ({"csrf": token}, {}),                                    # no Origin and no Referer
        ({"csrf": token}, {"Referer": "https://evil.example/x"}),
    ]
    for data, headers in refused:
        r = c.post(url, data=data, headers=headers)
        assert r.status_code == 403, (data, headers)
    assert daemon.queue.snapshot().queued == ()  # nothing reached the work queue
    # Without a session even the right token is refused (a cookie is what SameSite keeps home).
    assert httpx.post(base + url, data={"csrf": token}, headers={"Origin": base}).status_code == 403
    # The same form from our own page goes through.
    r = c.post(url, data={"csrf": token}, headers={"Origin": base})
    assert r.status_code == 303 and r.headers["location"] == "/ui/fleets/acme-freight?queued=refresh"
    assert daemon.queue.snapshot().queued == ("refresh:acme-freight",)
    # A login from another site is refused too (no login CSRF).
    assert httpx.post(base + "/ui/login", data={"password": PASSWORD},
                      headers={"Origin": "https://evil.example"}).status_code == 403


def test_after_logout_the_old_cookie_is_refused(console) -> None:
    base, _ = console
    with _login(base) as c:
        cookie = c.cookies[COOKIE]
        r = c.post("/ui/logout", data={"csrf": _csrf(c)}, headers={"Origin": base})
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert httpx.get(base + "/", cookies={COOKIE: cookie}).status_code == 303  # a copied cookie died too


def test_without_a_password_or_token_nobody_logs_in(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, token_key=SecretStr(Fernet.generate_key().decode()))
    with Manifest(tmp_path / "m.duckdb") as manifest:
        app = build_app(settings, manifest, LocalStore(tmp_path / "store"), {}, active_flows())
        port = free_port()
        server, t = _serve(create_app(app), port)
        try:
            base = f"http://127.0.0.1:{port}"
            assert "console is disabled" in httpx.get(base + "/ui/login").text
            for guess in ("", "None", "null"):
                r = httpx.post(base + "/ui/login", data={"password": guess}, headers={"Origin": base})
                assert r.status_code == 401
        finally:
            server.should_exit = True
            t.join(10)


def test_the_fleets_page_shows_status_error_and_the_grid_page_refuses_a_bad_name(console) -> None:
    base, _ = console
    with _login(base) as c:
        html = c.get("/").text
        row = html.split('data-fleet="bluebird-logistics"', 1)[1].split("</tr>", 1)[0]
        assert "status-failed" in row and "motive answered 503 three times" in row
        assert c.get("/ui/fleets/no-such-fleet").status_code == 404
        assert c.get("/ui/fleets/bad%20name").status_code == 400


def test_a_value_that_could_not_be_measured_is_marked_never_drawn_as_zero() -> None:
    months = ("2026-01", "2026-02", "2026-03")
    plot = Plot("harsh", "Harsh", "per 1000 mi", (
        Series("braking", (Point("2026-01", None, "median interval 30 s: too sparse to see braking"),
                           Point("2026-02", 0.0), Point("2026-03", 2.5))),))
    svg = str(render(plot, months))
    assert svg.count('class="pt"') == 2 and svg.count('class="na"') == 1
    assert 'data-month="2026-01"' in svg.split('class="na"', 1)[1][:40]
    assert "too sparse to see braking" in svg
    assert 'data-value="0.0"' in svg  # a measured zero is a point


def test_the_console_ships_its_templates_and_static_files(console) -> None:
    base, _ = console
    for asset, kind in (("/ui/static/console.css", "text/css"), ("/ui/static/console.js", "javascript")):
        r = httpx.get(base + asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
