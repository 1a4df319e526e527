"""Guessing the console's password, against a real `fleetlake run` over HTTP: slowed, then refused.

The daemon's own throttle rule (ingest.surfaces.console.throttle): from one address the first 3 failures
answer at once, the next ones each wait 1 s on the server before the password is checked, the
10th locks the address (429 with Retry-After) for a minute. Elapsed times are only bounded from
below, by that deliberate delay.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import loopback
from tests.support.daemon import DaemonProcess
from tests.support.ports import free_port

PASSWORD = "console-" + uuid.uuid4().hex
TOKEN = "api-" + uuid.uuid4().hex
OLD_NAME_VALUE = "old-style-" + uuid.uuid4().hex


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_API_TOKEN": TOKEN,
           "FLEETLAKE_CONSOLE_PASSWORD": PASSWORD, "FLEETLAKE_HTTP_PORT": str(free_port()),
           "FLEETLAKE_LOG_FORMAT": "json",
           "FLEETLAKE_SAMSARA_CLIENT_ID": OLD_NAME_VALUE,  # a flat name of earlier releases
           "FLEETLAKE_SAMSARA__CLIENT_SECRET": "secret-" + uuid.uuid4().hex}
    for k in ("FLEETLAKE_CONFIG_FILE", "FLEETLAKE_TOKEN_KEY", "FLEETLAKE_METRICS_TOKEN", "FLEETLAKE_TRUSTED_PROXIES"):
        env.pop(k, None)
    d = DaemonProcess(env, tmp_path / "daemon.log")
    d.start()
    try:
        yield d
    finally:
        d.kill()


def _log(d: DaemonProcess) -> list[dict[str, str]]:
    return [json.loads(line) for line in d.log.read_text().splitlines() if line.startswith("{")]


def _logins(metrics: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r'^fleetlake_console_logins_total\{outcome="(\w+)"\} (\S+)$',
                                                    metrics, re.M)}


def test_a_hundred_wrong_logins_are_slowed_then_refused_and_the_api_token_is_no_console_password(daemon) -> None:
    d = daemon
    origin = {"Origin": d.base}
    # Another client (its own loopback address): the API token is not a console password.
    other = loopback.client(base_url=d.base, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
    r = other.post("/ui/login", data={"password": TOKEN}, headers=origin)
    assert r.status_code == 401 and "fleetlake_session" not in r.headers.get("set-cookie", "")

    answers: list[tuple[int, float, str | None]] = []
    with loopback.client(base_url=d.base, timeout=30) as c:
        for i in range(100):
            # A made-up X-Forwarded-For per attempt: believed, it would make each guess a new client.
            # No proxy is trusted, so the lock stays on the address that really connects.
            headers = {**origin, "X-Forwarded-For": f"203.0.113.{i}"}
            t0 = time.monotonic()
            r = c.post("/ui/login", data={"password": f"guess-{i:03d}", "next": "/"}, headers=headers)
            answers.append((r.status_code, time.monotonic() - t0, r.headers.get("retry-after")))
        statuses = [a[0] for a in answers]
        assert statuses == [401] * 10 + [429] * 90, statuses
        assert all(a[1] >= 1.0 for a in answers[3:10]), [round(a[1], 2) for a in answers]  # the server's delay
        assert all(a[2] is not None and 1 <= int(a[2]) <= 60 for a in answers[10:])  # locked for a minute
        # Locked means locked: the right password from this address is not even checked.
        r = c.post("/ui/login", data={"password": PASSWORD}, headers=origin)
        assert r.status_code == 429 and "fleetlake_session" not in r.headers.get("set-cookie", "")
        assert "Too many failed logins from your address" in r.text

    # The lock is this address's alone: the operator elsewhere logs in with the console password.
    r = other.post("/ui/login", data={"password": PASSWORD, "next": "/"}, headers=origin)
    assert r.status_code == 303 and "fleetlake_session=" in r.headers["set-cookie"]
    assert other.get("/").status_code == 200
    other.close()

    # Counted in a metric and logged per failure, with the client's address and no password.
    assert _logins(loopback.get(d.base + "/metrics").text) == {"ok": 1.0, "failed": 11.0, "throttled": 0.0,
                                                             "locked": 91.0}
    lines = [e["msg"] for e in _log(d) if e["logger"] == "fleetlake.console"]
    assert sum("failed login from 127.0.0.1 " in m for m in lines) == 10
    assert sum("failed login from 127.0.0.2 " in m for m in lines) == 1
    assert any("127.0.0.1 locked out of the login for 60 s after 10 failed logins" in m for m in lines)
    text = d.log.read_text()
    assert "guess-" not in text and PASSWORD not in text and TOKEN not in text and "203.0.113." not in text


def test_a_deprecated_setting_name_reaches_the_daemons_log(daemon) -> None:
    notes = [e for e in _log(daemon) if e["logger"] == "fleetlake.settings"]
    assert [e["level"] for e in notes] == ["warning"]
    assert "FLEETLAKE_SAMSARA_CLIENT_ID is deprecated: use FLEETLAKE_SAMSARA__CLIENT_ID" in notes[0]["msg"]
    assert OLD_NAME_VALUE not in daemon.log.read_text()
