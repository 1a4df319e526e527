"""The web console's gate, over real HTTP (uvicorn on a free port): who gets in, what is refused.

No browser here (tests/test_console_browser.py drives one): these requests are what an attacker
could send by hand, a forged cookie, a cross-site form, a replayed cookie after logout.
"""

from __future__ import annotations

import base64
import io
import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.states import FleetStatus, RunStatus
from ingest.flows.registry import active_flows
from ingest.runtime.app import App, build_app
from ingest.runtime.daemon import Daemon
from ingest.surfaces.api import create_app
from ingest.surfaces.console.featuredata import Plot, Point, Series
from ingest.surfaces.console.pages import attachment
from ingest.surfaces.console.plots import render
from ingest.surfaces.console.session import COOKIE
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.manifest import FlowRun
from partitions.store import LocalStore
from tests.support import loopback
from tests.support.ports import free_port
from tests.test_api import _serve

PASSWORD = "console-pass-" + "y" * 12
TOKEN = "console-api-token-" + "z" * 12


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Daemon]]:
    with _console(tmp_path) as served:
        yield served


@contextmanager
def _console(tmp_path: Path, **overrides: Any) -> Iterator[tuple[str, Daemon]]:
    settings = load_settings(data_dir=tmp_path, api_token=SecretStr(TOKEN), console_password=SecretStr(PASSWORD),
                             token_key=SecretStr(Fernet.generate_key().decode()), **overrides)
    manifest = Manifest(tmp_path / "m.duckdb")
    manifest.upsert_fleet("acme-freight", "samsara", FleetStatus.ACTIVE)
    manifest.upsert_fleet("bluebird-logistics", "motive", FleetStatus.FAILED, error="motive answered 503 three times")
    app = build_app(settings, manifest, LocalStore(tmp_path / "store"), {}, active_flows())
    daemon = Daemon(app)
    port = free_port()
    server, t = _serve(create_app(app, daemon.pipeline, daemon.problems, daemon.backoffs), port)
    try:
        yield f"http://127.0.0.1:{port}", daemon
    finally:
        server.should_exit = True
        t.join(10)
        manifest.close()


@contextmanager
def _login(base: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with loopback.client(base_url=base, timeout=30) as c:
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
        r = loopback.get(base + path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next="), path
        assert "acme" not in r.text
    login = loopback.get(base + "/ui/login")
    assert login.status_code == 200 and "acme" not in login.text and "bluebird" not in login.text
    assert loopback.get(base + "/healthz").status_code == 200  # health stays open


def test_the_console_password_logs_in_with_a_strict_httponly_cookie_and_the_api_token_does_not(console) -> None:
    base, _ = console
    for wrong in ("wrong", TOKEN):  # guessing the console must not guess the JSON API's token
        r = loopback.post(base + "/ui/login", data={"password": wrong, "next": "/"}, headers={"Origin": base})
        assert r.status_code == 401 and COOKIE not in r.headers.get("set-cookie", ""), wrong
    with _login(base) as c:
        r = c.get("/")
        assert r.status_code == 200 and "acme-freight" in r.text and "bluebird-logistics" in r.text
    raw = loopback.post(base + "/ui/login", data={"password": PASSWORD}, headers={"Origin": base}).headers["set-cookie"]
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
        r = loopback.get(base + "/", cookies={COOKIE: value})
        assert r.status_code == 303 and "acme" not in r.text, value
    assert loopback.get(base + "/", cookies={COOKIE: real}).status_code == 200  # the genuine one works


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
    assert loopback.post(base + url, data={"csrf": token}, headers={"Origin": base}).status_code == 403
    # The same form from our own page goes through.
    r = c.post(url, data={"csrf": token}, headers={"Origin": base})
    assert r.status_code == 303 and r.headers["location"] == "/ui/fleets/acme-freight?queued=refresh"
    assert daemon.queue.snapshot().queued == ("refresh:acme-freight",)
    # A login from another site is refused too (no login CSRF).
    assert loopback.post(base + "/ui/login", data={"password": PASSWORD},
                      headers={"Origin": "https://evil.example"}).status_code == 403


def test_after_logout_the_old_cookie_is_refused(console) -> None:
    base, _ = console
    with _login(base) as c:
        cookie = c.cookies[COOKIE]
        r = c.post("/ui/logout", data={"csrf": _csrf(c)}, headers={"Origin": base})
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert loopback.get(base + "/", cookies={COOKIE: cookie}).status_code == 303  # a copied cookie died too


def test_without_a_console_password_nobody_logs_in_and_the_page_names_the_setting(tmp_path: Path) -> None:
    # An API token alone opens the API, not the console.
    settings = load_settings(data_dir=tmp_path, api_token=SecretStr(TOKEN),
                             token_key=SecretStr(Fernet.generate_key().decode()))
    with Manifest(tmp_path / "m.duckdb") as manifest:
        app = build_app(settings, manifest, LocalStore(tmp_path / "store"), {}, active_flows())
        port = free_port()
        server, t = _serve(create_app(app), port)
        try:
            base = f"http://127.0.0.1:{port}"
            page = loopback.get(base + "/ui/login").text
            assert "console is disabled" in page and "FLEETLAKE_CONSOLE_PASSWORD" in page
            for guess in ("", "None", "null", TOKEN):
                r = loopback.post(base + "/ui/login", data={"password": guess}, headers={"Origin": base})
                assert r.status_code == 403 and "FLEETLAKE_CONSOLE_PASSWORD" in r.text
                assert COOKIE not in r.headers.get("set-cookie", "")
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
        r = loopback.get(base + asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]


# ---------------------------------------------------------------------- behind a proxy
def _via(proxy_client: str | None = None, **forwarded: str) -> dict[str, str]:
    """Headers a reverse proxy adds (X-Forwarded-For, -Proto, -Host)."""
    out = {f"X-Forwarded-{k.title()}": v for k, v in forwarded.items()}
    if proxy_client:
        out["X-Forwarded-For"] = proxy_client
    return out


def test_behind_a_trusted_https_proxy_the_login_and_forms_pass_the_origin_check(tmp_path: Path) -> None:
    public = "https://fleets.example.com"
    proxy = {"Origin": public, **_via(proto="https", host="fleets.example.com")}
    login = {"password": PASSWORD, "next": "/"}
    # Not trusted (the default): the forwarded headers are not believed, and the Origin is another site's.
    with _console(tmp_path / "a") as (base, _):
        assert loopback.post(base + "/ui/login", data=login, headers=proxy).status_code == 403
    with _console(tmp_path / "b", trusted_proxies="127.0.0.1") as (base, daemon):
        with loopback.client(base_url=base, headers=proxy) as c:
            r = c.post("/ui/login", data=login)
            assert r.status_code == 303, r.text
            r = c.post("/ui/fleets/acme-freight/refresh", data={"csrf": _csrf(c)})
            assert r.status_code == 303 and daemon.queue.snapshot().queued == ("refresh:acme-freight",)
            # Still another site's Origin is refused, whatever the proxy forwards.
            evil = {**proxy, "Origin": "https://evil.example"}
            assert c.post("/ui/fleets/acme-freight/refresh", data={"csrf": _csrf(c)}, headers=evil).status_code == 403
            # A Host the client put in front of the proxy's own is not taken.
            spoof = {"Origin": "https://evil.example", **_via(proto="https", host="evil.example, fleets.example.com")}
            assert c.post("/ui/login", data=login, headers=spoof).status_code == 403


def test_an_origin_equal_to_the_public_urls_is_our_own(tmp_path: Path) -> None:
    # A proxy that forwards nothing (or is not trusted): FLEETLAKE_PUBLIC_URL names the browser's origin.
    with _console(tmp_path, public_url="https://fleets.example.com:443/fleetlake") as (base, _):
        r = loopback.post(base + "/ui/login", data={"password": PASSWORD}, headers={"Origin": "https://fleets.example.com"})
        assert r.status_code == 303
        r = loopback.post(base + "/ui/login", data={"password": PASSWORD}, headers={"Origin": "https://example.com"})
        assert r.status_code == 403


def test_a_trusted_proxys_client_address_keys_the_lock_so_one_guesser_locks_only_itself(tmp_path: Path) -> None:
    with _console(tmp_path, trusted_proxies=["127.0.0.0/8"]) as (base, _):
        def login(password: str, client: str) -> httpx.Response:
            return loopback.post(base + "/ui/login", data={"password": password},
                              headers={"Origin": base, **_via(f"198.51.100.9, {client}")})

        statuses = [login(f"guess-{i}", "203.0.113.66").status_code for i in range(11)]
        assert statuses == [401] * 10 + [429]
        assert login(PASSWORD, "203.0.113.66").status_code == 429  # the guesser is locked
        assert login(PASSWORD, "203.0.113.67").status_code == 303  # the operator behind the same proxy is not


def test_guesses_from_many_addresses_close_the_login_except_to_one_that_logged_in_before(tmp_path: Path) -> None:
    with _console(tmp_path, trusted_proxies="127.0.0.1") as (base, _):
        def login(password: str, client: str) -> httpx.Response:
            return loopback.post(base + "/ui/login", data={"password": password},
                              headers={"Origin": base, **_via(client)})

        assert login(PASSWORD, "192.0.2.10").status_code == 303  # the operator, earlier
        assert [login("guess", f"203.0.113.{i}").status_code for i in range(30)] == [401] * 30
        r = login(PASSWORD, "192.0.2.99")  # a new address, even with the right password
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert "Too many failed logins from everywhere" in r.text
        assert login(PASSWORD, "192.0.2.10").status_code == 303  # the operator still gets in


def test_a_trusted_proxys_user_header_signs_in_and_only_from_the_proxy(tmp_path: Path) -> None:
    header = {"X-Forwarded-User": "alice@insurer.example"}
    with _console(tmp_path / "a", trusted_proxies="127.0.0.1", console_auth_header="X-Forwarded-User") as (base, d):
        with loopback.client(base_url=base, headers=header) as c:
            r = c.get("/")
            assert r.status_code == 200 and "acme-freight" in r.text and "signed in as alice@insurer.example" in r.text
            assert COOKIE not in r.headers.get("set-cookie", "")
            r = c.post("/ui/fleets/acme-freight/refresh", data={"csrf": _csrf(c)}, headers={"Origin": base})
            assert r.status_code == 303 and d.queue.snapshot().queued == ("refresh:acme-freight",)
            assert c.post("/ui/fleets/acme-freight/refresh", data={}, headers={"Origin": base}).status_code == 403
        assert loopback.get(base + "/").status_code == 303  # no header: the login page
    # The same header from a peer that is not the trusted proxy is anybody's: ignored.
    with _console(tmp_path / "b", trusted_proxies="10.0.0.0/8", console_auth_header="X-Forwarded-User") as (base, _):
        r = loopback.get(base + "/", headers=header)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login") and "acme" not in r.text


# ---------------------------------------------------------------------- the features CSV's name
def _vehicle_features(tmp_path: Path, service: App, vehicle: str) -> None:
    """A distance run of `vehicle` in acme-freight's January, as a feature pass would leave it."""
    version = max(f.version for f in service.flows if f.name == "distance")
    key = f"features/distance/v{version}/fleet=acme-freight/month=2026-01/part-test.parquet"
    buf = io.BytesIO()
    pq.write_table(pa.table({"fleet_id": ["acme-freight"], "month": ["2026-01"], "vehicle_id": [vehicle],
                             "state": ["TX"], "miles": [123.5]}), buf)
    service.store.put(key, buf.getvalue())
    now = datetime.now(timezone.utc)
    service.manifest.record_run(FlowRun("r-csv", "distance", version, "c", "acme-freight", "2026-01", "i",
                                        RunStatus.SUCCEEDED, (key,), None, None, now, now))


def test_the_csv_of_any_vehicle_id_downloads_under_a_safe_name_and_a_hostile_one_is_a_clean_404(
        tmp_path: Path) -> None:
    odd = "Lkw-Müller\r\nSet-Cookie: x=1 \"7\" ✓"  # a TSP's vehicle id: any text
    with _console(tmp_path) as (base, daemon):
        _vehicle_features(tmp_path, daemon.app, odd)
        with _login(base) as c:
            r = c.get("/ui/fleets/acme-freight/features.csv", params={"vehicle": odd})
            assert r.status_code == 200 and "set-cookie" not in r.headers
            disposition = r.headers["content-disposition"]
            assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
            fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
            assert fallback == "acme-freight-Lkw-M_ller_Set-Cookie_x_1_7_-features.csv"
            exact = unquote(disposition.split("filename*=UTF-8''", 1)[1])
            assert exact == f"acme-freight-{odd}-features.csv"
            assert "123.5" in r.text and "Lkw-M" in r.text
            for hostile in ("a\r\nX-Injected: 1", "\u2603 snowman", "x" * 4000, "\x00"):
                for path in ("/ui/fleets/acme-freight/features.csv", "/ui/fleets/acme-freight/features"):
                    r = c.get(path, params={"vehicle": hostile})
                    assert r.status_code == 404 and "no features of a vehicle" in r.text, (path, hostile[:20])
                    assert "x-injected" not in r.headers


def test_an_attachment_name_is_ascii_with_the_exact_name_beside_it() -> None:
    assert attachment("acme-fleet-features.csv") == ("attachment; filename=\"acme-fleet-features.csv\"; "
                                                     "filename*=UTF-8''acme-fleet-features.csv")
    header = attachment("\u00e9\r\n\"; =")  # nothing ASCII worth keeping
    assert header.startswith('attachment; filename="download"; ') and header.isascii()
    assert unquote(header.split("''", 1)[1]) == "\u00e9\r\n\"; ="
