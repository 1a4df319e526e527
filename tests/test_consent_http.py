"""Consent is single-use and explicit, proved over HTTP against a real `fleetlake run` and the sandbox.

A replayed state (with a fresh code), a consent for a connected fleet without a re-link, a state
for another TSP and a signed but malformed state are each refused, and none of them changes the
fleet's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet

from ingest.wiring.keys import state_key
from ingest.wiring.settings import load_settings
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess
from tests.support.ports import free_port

TOKEN = "consent-" + uuid.uuid4().hex


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DaemonProcess, httpx.Client]]:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    config = replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)
    with SandboxServer(config) as sandbox:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"),
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_HISTORY_MONTHS": "1", "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with _api(d) as api:
                yield d, api
        finally:
            d.kill()


def _api(d: DaemonProcess) -> httpx.Client:
    return loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _consent_url(api: httpx.Client, tsp: str, fleet: str, relink: bool = False) -> httpx.Response:
    return api.post(f"/connect/{tsp}", params={"fleet_id": fleet, **({"relink": "true"} if relink else {})})


def _approve(consent_url: str) -> str:
    """The sandbox user approves: the TSP's redirect back to the daemon, with a fresh code each time."""
    r = loopback.get(consent_url)
    assert r.status_code == 302, r.text
    return r.headers["location"]


def test_a_replayed_state_is_refused_even_with_a_fresh_code(daemon) -> None:
    d, api = daemon
    url = _consent_url(api, "samsara", "acme-freight").json()["consent_url"]
    first = _approve(url)
    assert loopback.get(first).status_code == 200
    # The same consent link approved again: a new, valid code with the used state.
    replay = _approve(url)
    assert httpx.URL(replay).params["code"] != httpx.URL(first).params["code"]
    r = loopback.get(replay)
    assert r.status_code == 400 and "used already" in r.json()["error"]
    # A re-link link passes the "already connected" check, so only its used nonce refuses a replay.
    relink = _consent_url(api, "samsara", "acme-freight", relink=True).json()["consent_url"]
    assert loopback.get(_approve(relink)).status_code == 200
    r = loopback.get(_approve(relink))
    assert r.status_code == 400 and "used already" in r.json()["error"]
    state = httpx.URL(replay).params["state"]
    log = d.log.read_text()
    assert "replayed" in log and state not in log and httpx.URL(replay).params["code"] not in log


def test_a_connected_fleet_takes_a_new_consent_only_when_a_relink_was_asked(daemon) -> None:
    d, api = daemon
    # Two links issued while the fleet was new; the second is completed after the first.
    early = [_consent_url(api, "samsara", "acme-freight").json()["consent_url"] for _ in range(2)]
    assert loopback.get(_approve(early[0])).status_code == 200
    r = loopback.get(_approve(early[1]))
    assert r.status_code == 400 and "already connected" in r.json()["error"]
    r = _consent_url(api, "samsara", "acme-freight")
    assert r.status_code == 409 and "--relink" in r.json()["error"]
    relink = _consent_url(api, "samsara", "acme-freight", relink=True)
    assert relink.status_code == 200 and relink.json()["relink"] is True
    r = loopback.get(_approve(relink.json()["consent_url"]))
    assert r.status_code == 200 and "acme-freight" in r.text


def test_a_state_for_one_tsp_is_refused_by_the_other(daemon) -> None:
    d, api = daemon
    redirect = _approve(_consent_url(api, "samsara", "acme-freight").json()["consent_url"])
    r = loopback.get(redirect.replace("/oauth/samsara/", "/oauth/motive/"))
    assert r.status_code == 400 and "another TSP" in r.json()["error"]
    assert api.get("/fleets").json() == []
    # Refused before it was used: the right TSP still accepts it.
    assert loopback.get(redirect).status_code == 200


def test_malformed_and_forged_states_get_400(daemon) -> None:
    d, _ = daemon
    key = state_key(load_settings(token_key=d.env["FLEETLAKE_TOKEN_KEY"]))
    for payload in ("samsara.acme-freight.soon.nonce.n", "samsara.acme-freight.99999999999", "samsara...."):
        mac = base64.urlsafe_b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:18]).decode()
        r = loopback.get(f"{d.base}/oauth/samsara/callback", params={"code": "c", "state": f"{payload}.{mac}"})
        assert r.status_code == 400 and "malformed" in r.json()["error"], payload
    r = loopback.get(f"{d.base}/oauth/samsara/callback", params={"code": "c", "state": "samsara.x.1.n.n.forged"})
    assert r.status_code == 400 and "not issued" in r.json()["error"]
