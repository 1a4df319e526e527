"""The limits of one TSP request and one pull slice, against hostile sandbox servers over real HTTP.

Each case would hang or blow up a client without the limit: endless empty pages (a fresh cursor
each time), a body trickled a byte at a time, a gzip bomb, a 200 MB page. Each must end with its
own clear error, quickly, and the stop flag must end a pull between pages.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from common.errors import DeadlineExceeded, PaginationLoop, PullInterrupted, ResponseTooLarge
from connectors.http import Limits
from connectors.oauth import Vault
from partitions import Manifest
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from tests.conftest import NOW
from tests.test_pull_sandbox import connect

FLEET = "acme-freight"
WEEK_MS = 7 * 86_400_000
START = int(NOW.timestamp() * 1000) - 3 * WEEK_MS


@pytest.fixture
def samsara(sandbox: SandboxServer, tmp_path: Path):
    with Manifest(tmp_path / "m.duckdb") as m:
        yield lambda limits, stop=None: _connector(sandbox, m, limits, stop)


def _connector(sandbox: SandboxServer, m: Manifest, limits: Limits, stop: threading.Event | None):
    c = connect(sandbox, "samsara", FLEET, m, Vault(Fernet.generate_key().decode()))
    c.http.limits, c.http.stop = limits, stop
    return c


def _vehicle(c) -> str:
    return c.vehicles()[0].vehicle_id


def test_endless_empty_pages_end_at_what_the_slice_can_hold(sandbox: SandboxServer, samsara) -> None:
    # 30 s pings: a week holds 20,160 points, 40 pages of 512, plus slack.
    limits = Limits(min_ping_interval_s=30, page_slack=4)
    c = samsara(limits)
    vid = _vehicle(c)
    sandbox.world.set_quirks(FLEET, Quirks(endless_pages=True))
    before = c.http.requests
    with pytest.raises(PaginationLoop, match=r"more than 44 pages for 168 h of one vehicle's GPS"):
        c.gps_slice(vid, START, START + WEEK_MS)
    assert c.http.requests - before == 44


def test_a_normal_week_fits_under_the_page_cap(sandbox: SandboxServer, samsara) -> None:
    c = samsara(Limits(min_ping_interval_s=30, page_slack=4))
    t = c.gps_slice(_vehicle(c), START, START + WEEK_MS)
    assert t.num_rows > 1000


def test_a_trickling_server_fails_at_the_request_deadline(sandbox: SandboxServer, samsara) -> None:
    c = samsara(Limits(request_deadline_s=2.0))
    vid = _vehicle(c)
    sandbox.world.set_quirks(FLEET, Quirks(trickle=True))
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no complete answer within 2 s"):
        c.gps_slice(vid, START, START + WEEK_MS)
    # One read may end a gap after the deadline; never a retry, never the whole trickle.
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("quirk", ["gzip_bomb", "huge_page"])
def test_a_body_past_the_cap_fails_as_too_large(sandbox: SandboxServer, samsara, quirk: str) -> None:
    c = samsara(Limits(max_response_bytes=8 << 20))
    vid = _vehicle(c)
    sandbox.world.set_quirks(FLEET, Quirks(**{quirk: True}))
    with pytest.raises(ResponseTooLarge, match="exceeds 8,388,608 bytes"):
        c.gps_slice(vid, START, START + WEEK_MS)
    assert c.http.requests == 2  # vehicles, then the one page: not retried


def test_gzip_is_still_decoded_for_honest_servers(sandbox: SandboxServer, samsara) -> None:
    c = samsara(Limits())
    r = c.http.get("/fleet/vehicles", {"limit": 5})
    assert r.json()["data"] and "content-encoding" not in r.headers


def test_the_stop_flag_ends_a_slice_between_pages(sandbox: SandboxServer, samsara) -> None:
    stop = threading.Event()
    c = samsara(Limits(), stop)
    vid = _vehicle(c)
    sandbox.world.set_quirks(FLEET, Quirks(endless_pages=True))
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(PullInterrupted):
        c.gps_slice(vid, START, START + WEEK_MS)
    assert time.monotonic() - t0 < 5
