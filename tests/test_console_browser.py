"""The web console in a real browser (headless Debian chromium, driven by Playwright) against a real
`fleetlake run` daemon pulling from the sandbox over HTTP.

One operator's day: refused before login; log in; connect a fleet through the sandbox's consent
page; watch it backfill to active, ready to quote; its grid all done, the open month marked; a
grid cell opens its runs, and a re-run from it runs the window once more; its features plotted
with one point per month (checked against the JSON API's numbers, per vehicle and in the CSV),
the open month drawn apart; the sandbox clock moves a month, a refresh from the console lands the
new month; log out, and the old cookie is refused.

Every page is seen at a desktop's 1440x900 and a phone's 390x844 (a second browser context with
the same session): at both, no page is wider than the screen. Each page's screenshot is saved
under docs/screenshots/ at both widths (`<page>.png`, `<page>-390.png`; README shows one).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, Page, sync_playwright

from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-" + uuid.uuid4().hex
TOKEN = "browser-api-" + uuid.uuid4().hex
FLEET = "acme-freight"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Installs Debian's chromium when it is missing (as root; a clear error otherwise). Never skipped.
    subprocess.run(["bash", str(ROOT / "scripts" / "browser.sh")], check=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[SandboxServer, str]]:
    config = replace(default_config(seed=5, vehicles=2, ping_interval_s=60, history_months=2, now=NOW),
                     samsara_rate_per_s=500.0, motive_rate_per_s=500.0)
    with SandboxServer(config) as sandbox:
        port = free_port()
        env = {**os.environ,
               "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_STORE_URL": (tmp_path / "lake").as_uri(),
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_CONSOLE_PASSWORD": PASSWORD, "FLEETLAKE_HTTP_PORT": str(port),
               "FLEETLAKE_SANDBOX_URL": sandbox.base_url, "FLEETLAKE_HISTORY_MONTHS": "2",
               "FLEETLAKE_SHUTDOWN_GRACE_S": "30", "FLEETLAKE_READINESS_MONTHS": "1,2"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        proc = DaemonProcess(env, tmp_path / "daemon.log")
        try:
            proc.start()
            yield sandbox, proc.base
        finally:
            proc.kill()  # graceful shutdown is tests/test_daemon_e2e.py's subject
        log = (tmp_path / "daemon.log").read_text()
        assert PASSWORD not in log and TOKEN not in log


def _shot(page: Page, name: str) -> None:
    """Written aside, then renamed: a parallel run never leaves half an image."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=SHOTS, prefix=".", suffix=".tmp.png")
    os.close(fd)
    page.screenshot(path=tmp, full_page=True)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would follow the image into the repository
    os.replace(tmp, SHOTS / f"{name}.png")


def _fits(page: Page) -> None:
    """No page is wider than the screen: wide tables scroll inside their own box, never the page."""
    wide, screen = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= screen, f"{page.url} is {wide} px wide in a {screen} px viewport"


def _seen(page: Page, name: str, phone: Page | None = None) -> None:
    """The page as it is now fits the desktop screen (and its screenshot is taken); `phone` then
    opens the same URL at 390 px, which must fit too (screenshot `<name>-390`)."""
    _fits(page)
    _shot(page, name)
    if phone is not None:
        phone.goto(page.url)
        _fits(phone)
        _shot(phone, f"{name}-390")


def _until(what: str, page: Page, url: str, check: Callable[[], Any], timeout: float = 400.0) -> Any:
    """Reload `url` until `check()` is truthy (the page's own auto-refresh is off in tests)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        page.goto(url)
        last = check()
        if last:
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _grid_done(page: Page) -> list[str] | None:
    states = page.locator("#grid td.cell").evaluate_all("cells => cells.map(c => c.dataset.state)")
    months = page.locator("#grid tr[data-month]").evaluate_all("rows => rows.map(r => r.dataset.month)")
    return months if months and states and all(s == "done" for s in states) else None


def _points(page: Page, plot: str) -> dict[str, list[tuple[str, float | None]]]:
    """series -> [(month, value or None)] as drawn in the plot's SVG."""
    marks = page.locator(f'svg[data-plot="{plot}"] circle.pt, svg[data-plot="{plot}"] g.na').evaluate_all(
        "els => els.map(e => [e.dataset.series, e.dataset.month, e.dataset.value ?? null])")
    out: dict[str, list[tuple[str, float | None]]] = {}
    for series, month, value in marks:
        out.setdefault(series, []).append((month, None if value is None else float(value)))
    return {s: sorted(pts) for s, pts in out.items()}


@pytest.mark.slow
def _newest(by_flow: dict[str, object], name: str) -> str:
    """The newest active version of `name` among a month's features (`<flow>@<version>` keys):
    the console's plots read each flow's newest version."""
    return max((k for k in by_flow if k.split("@")[0] == name), key=lambda k: int(k.split("@")[1]))


def test_an_operator_onboards_watches_and_refreshes_a_fleet_in_the_console(browser: Browser, daemon) -> None:
    sandbox, base = daemon
    context = browser.new_context(base_url=base, viewport=DESKTOP, accept_downloads=True)
    phones = browser.new_context(base_url=base, viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                 has_touch=True)
    for ctx in (context, phones):
        ctx.set_default_timeout(300_000)  # a shared, loaded machine: pages wait on the daemon's work thread
        ctx.add_init_script("sessionStorage.setItem('fleetlake-autorefresh', 'off')")
    page = context.new_page()
    phone = phones.new_page()
    api = loopback.client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    # Refused before login: every page lands on the login form, which names no fleet.
    page.goto(f"/ui/fleets/{FLEET}")
    assert page.url.startswith(f"{base}/ui/login")
    page.fill("#password", "not-the-password")
    page.click("#login")
    assert page.locator("#login-failed").is_visible()
    _fits(page)
    _shot(page, "login")
    phone.goto("/ui/login")
    _fits(phone)
    _shot(phone, "login-390")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{base}/ui/fleets/{FLEET}")  # back where the user was going
    assert "no such fleet" in page.inner_text("main")
    phones.add_cookies(context.cookies())  # the phone shares the session
    _seen(page, "error", phone)

    # Connect a fleet: the console makes the consent link; the fleet's admin follows it on the
    # sandbox's consent page, which sends the browser back to the daemon's callback.
    page.goto("/")
    page.fill("#connect-fleet", FLEET)
    page.select_option("#connect-tsp", "samsara")
    page.click("#connect")
    link = page.locator("#consent-link")
    assert link.get_attribute("href", timeout=10_000).startswith(sandbox.base_url)  # type: ignore[union-attr]
    _fits(page)
    _shot(page, "connect")
    phone.goto("/")  # the phone makes a consent link of its own (a POST): the page's long link must wrap
    phone.fill("#connect-fleet", FLEET)
    phone.select_option("#connect-tsp", "samsara")
    phone.click("#connect")
    assert phone.locator("#consent-link").get_attribute("href").startswith(sandbox.base_url)  # type: ignore[union-attr]
    _fits(phone)
    _shot(phone, "connect-390")
    link.click()
    page.wait_for_url(f"{base}/oauth/samsara/callback*")
    # (whether the page adds "backfill has started" depends on who queued it first: the callback or
    # the daemon's poll for new consents; the backfill itself is what the next step watches)
    assert f"Fleet {FLEET} is connected" in page.inner_text("body")

    # Backfill to active, as the fleets page shows it.
    status = f'tr[data-fleet="{FLEET}"] .badge'
    _until("the fleet active", page, "/", lambda: page.inner_text(status) == "active")
    row = page.locator(f'tr[data-fleet="{FLEET}"]')
    assert int(row.locator("td.months").inner_text()) == 3  # two history months and the current one
    # Ready to quote once both complete months have every flow's features (thresholds 1 and 2
    # months), and landed moments ago.
    _until("both complete months with features", page, "/",
           lambda: row.locator("td.features").inner_text() == "2/2")
    assert row.locator("td.quote").inner_text() == "ready to quote · 2 mo"
    assert re.fullmatch(r"just now|\d+ min ago", row.locator("td.landed").inner_text())
    _seen(page, "fleets", phone)

    # Its grid: every month, every flow done; the current month marked open.
    months = _until("every window done", page, f"/ui/fleets/{FLEET}", lambda: _grid_done(page))
    assert months == ["2026-01", "2026-02", "2026-03"]
    flows = page.locator("#grid thead th").count() - 3
    assert flows >= 7 and page.locator("#grid td.cell").count() == flows * len(months)
    assert page.locator("#grid tr[data-open]").evaluate_all("rows => rows.map(r => r.dataset.month)") == ["2026-03"]
    assert page.locator('#grid tr[data-month="2026-03"] .badge.open').is_visible()
    _seen(page, "fleet", phone)

    # A grid cell opens its runs: status, attempt, duration; a re-run from it runs the window once more,
    # though nothing changed, and says the content is the same.
    page.click('#grid tr[data-month="2026-01"] td.cell[data-flow="distance@2"] a')
    page.wait_for_url(f"**/ui/fleets/{FLEET}?flow=distance%402&month=2026-01#window")
    window = page.locator("#window")
    assert window.is_visible() and window.get_attribute("data-month") == "2026-01"
    first = page.locator("#window-runs tr[data-run]")
    assert first.count() >= 1 and first.first.get_attribute("data-status") == "succeeded"
    assert first.first.locator("td").nth(3).inner_text().endswith("s")  # a duration
    runs_before = first.count()
    page.click("#rerun-window")
    assert "1 succeeded run set aside" in page.inner_text("#rerun-queued")
    cell_url = f"/ui/fleets/{FLEET}?flow=distance%402&month=2026-01"
    _until("the re-run", page, cell_url, lambda: page.locator("#window-runs tr[data-run]").count() == runs_before + 1
           and page.inner_text("#window-state") == "done")
    newest = page.locator("#window-runs tr[data-run]").first
    assert newest.get_attribute("data-status") == "succeeded" and "same content as before" in newest.inner_text()
    assert "set aside for a re-run" in page.locator("#window-runs tr[data-run]").nth(1).inner_text()
    _seen(page, "fleet-window", phone)

    # Features: each plot has one mark per month and series; the numbers are the API's.
    # the quote, a page an underwriter prints: every figure with its months, or null with the reason
    quote_rows = _until("the quote summary", page, f"/ui/fleets/{FLEET}/quote",
                        lambda: page.locator("#figures tbody tr").count())
    assert quote_rows == 6 and "2026-02" in page.locator("#window").inner_text()  # the last complete month
    assert page.locator("#figure-miles td.num").first.inner_text().strip() not in ("", "not measured")
    _seen(page, "quote", phone)
    page.emulate_media(media="print")
    assert page.locator("header").is_hidden()  # printed: the figures alone
    _shot(page, "quote-print")
    page.emulate_media(media="screen")
    page.goto(f"/ui/fleets/{FLEET}")
    page.click("#features-link")
    page.wait_for_url(f"{base}/ui/fleets/{FLEET}/features")
    feats = api.get(f"/fleets/{FLEET}/features").json()["months"]
    assert sorted(feats) == months
    miles = _points(page, "miles")["miles"]
    assert [m for m, _ in miles] == months
    for month, value in miles:
        truth = sum(r["miles"] for r in feats[month][_newest(feats[month], "distance")])  # what the console plots
        assert value == pytest.approx(truth, rel=1e-9), month
    for plot, series in (("radius", 1), ("speeding", 1), ("harsh", 3), ("night_share", 1), ("driving_hours", 1)):
        drawn = _points(page, plot)
        assert len(drawn) == series and all([m for m, _ in pts] == months for pts in drawn.values()), plot
    harsh = _points(page, "harsh")
    for month in months:  # not measurable from 60 s pings: marked with the reason, not drawn as 0
        fleet_row = feats[month][_newest(feats[month], "harsh")][0]
        drawn = dict(harsh["braking"])[month]
        assert (drawn is None) == (not fleet_row["harsh_brake_measurable"]), month
    assert page.locator('svg[data-plot="miles_by_state"] g.bar').count() == len(months)
    states = page.inner_text("#plot-miles_by_state .legend")  # every segment named, with its share
    assert re.search(r"[A-Z]{2} \d+%", states) and "--" not in states
    # The open month is drawn apart: shaded and marked, its points hollow and off the line.
    assert page.locator('svg[data-plot="miles"] g.open-month').evaluate_all(
        "gs => gs.map(g => g.dataset.month)") == ["2026-03"]
    assert page.locator('svg[data-plot="miles"] circle.pt.open').get_attribute("data-month") == "2026-03"
    assert page.inner_text("#open-months") == "2026-03"
    _seen(page, "features", phone)

    # The CSV holds exactly what is plotted.
    with page.expect_download() as dl:
        page.click("#csv")
    with open(dl.value.path(), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["month"], float(r["value"])) for r in rows if r["plot"] == "miles"] == miles

    # Per-vehicle drill-down: the vehicles' miles add up to the fleet's.
    vehicles = page.locator("#vehicle option").evaluate_all("os => os.map(o => o.value).filter(v => v)")
    assert len(vehicles) == 2
    per_month = {m: 0.0 for m in months}
    for v in vehicles:
        page.select_option("#vehicle", v)
        page.wait_for_url(f"**/features?vehicle={v}")
        assert v in page.inner_text("#scope")
        for month, value in _points(page, "miles")["miles"]:
            per_month[month] += value or 0.0
    for month, value in miles:
        assert per_month[month] == pytest.approx(value, rel=1e-6), month

    # A month later: a refresh from the console lands the new month and computes it.
    sandbox.world.clock.advance_months(1)
    page.goto(f"/ui/fleets/{FLEET}")
    page.click("#refresh")
    assert "refresh" in page.inner_text("#queued")
    months = _until("the new month done", page, f"/ui/fleets/{FLEET}",
                    lambda: (m := _grid_done(page)) and "2026-04" in m and m)
    assert months == ["2026-01", "2026-02", "2026-03", "2026-04"]
    page.goto(f"/ui/fleets/{FLEET}/features")
    assert [m for m, _ in _points(page, "miles")["miles"]] == months

    # Log out: the console is closed again, even to the old cookie.
    old = context.cookies()
    page.click("#logout")
    page.wait_for_url(f"{base}/ui/login")
    for path in ("/", f"/ui/fleets/{FLEET}", f"/ui/fleets/{FLEET}/features"):
        page.goto(path)
        assert page.url.startswith(f"{base}/ui/login") and FLEET not in page.inner_text("main"), path
    context.add_cookies(old)  # type: ignore[arg-type]
    page.goto("/")
    assert page.url.startswith(f"{base}/ui/login")
    api.close()
    context.close()
    phones.close()
