"""The fake Motive API over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
import pytest

from sandbox.server import SandboxServer
from tests.conftest import NOW, sandbox_config
from tests.support.tsp_http import REDIRECT, authorize, bearer, motive_consent, motive_token


def test_oauth_with_client_credentials_in_the_form_body(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    code = authorize(client, ep.base_url, "/oauth/authorize", ep.client_id, state="s9")
    assert code["state"] == ["s9"]
    bad = client.post(f"{ep.base_url}/oauth/token", data={"grant_type": "authorization_code", "code": code["code"][0],
                                                         "client_id": ep.client_id, "client_secret": "x"})
    assert bad.status_code == 401
    tok = motive_consent(client, ep)
    assert tok["expires_in"] == 7200 and tok["token_type"] == "Bearer"
    rotated = motive_token(client, ep, grant_type="refresh_token", refresh_token=tok["refresh_token"]).json()
    assert rotated["refresh_token"] != tok["refresh_token"]
    reused = motive_token(client, ep, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    code = authorize(client, ep.base_url, "/oauth/authorize", ep.client_id)["code"][0]
    r = motive_token(client, ep, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "/evil")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_api_key_is_an_alternative_to_oauth(sandbox: SandboxServer, client: httpx.Client) -> None:
    base = sandbox.base_url
    key = client.post(f"{base}/_sandbox/fleets/bluebird-logistics/api-key").json()["api_key"]
    ep = sandbox.endpoint("motive")
    assert client.get(f"{ep.base_url}/v1/vehicles", headers={"X-Api-Key": key}).status_code == 200
    assert client.get(f"{ep.base_url}/v1/vehicles", headers={"X-Api-Key": "nope"}).status_code == 401


def test_vehicles_and_users_page_with_page_no_and_per_page(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    h = bearer(motive_consent(client, ep))
    sim = sandbox.world.sims["bluebird-logistics"]
    ids = []
    for page_no in (1, 2, 3):
        body = client.get(f"{ep.base_url}/v1/vehicles", params={"per_page": 2, "page_no": page_no}, headers=h).json()
        assert body["pagination"] == {"per_page": 2, "page_no": page_no, "total": len(sim.vehicles)}
        ids += [item["vehicle"]["id"] for item in body["vehicles"]]
    assert sorted(ids) == sorted(int(v.vehicle_id) for v in sim.vehicles)
    clamped = client.get(f"{ep.base_url}/v1/users", params={"per_page": 500}, headers=h).json()
    assert clamped["pagination"]["per_page"] == 100 and "user" in clamped["users"][0]


def test_locations_use_inclusive_dates_and_metric_units(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    h = bearer(motive_consent(client, ep))
    sim = sandbox.world.sims["bluebird-logistics"]
    v = sim.vehicles[1]
    d = (NOW - timedelta(days=10)).date()
    r = client.get(f"{ep.base_url}/v3/vehicle_locations/{v.vehicle_id}", headers=h,
                   params={"start_date": d.isoformat(), "end_date": (d + timedelta(days=1)).isoformat()})
    assert r.status_code == 200
    locs = [x["vehicle_location"] for x in r.json()["vehicle_locations"]]
    lo = int(np.datetime64(d.isoformat(), "ms").astype(np.int64))
    c = sim.pings(v, lo, lo + 2 * 86_400_000)
    assert len(locs) == len(c)
    for i in range(0, len(locs), 97):
        assert locs[i]["lat"] == c.lat[i] and locs[i]["lon"] == c.lon[i]
        assert locs[i]["speed"] == pytest.approx(c.speed_mph[i] * 1.609344, abs=0.006)
        assert locs[i]["odometer"] == pytest.approx(c.odometer_mi[i] * 1.609344, abs=0.006)
        assert (locs[i]["bearing"] is None) == (c.speed_mph[i] == 0)


def test_location_windows_over_three_months_are_refused(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    h = bearer(motive_consent(client, ep))
    vid = sandbox.world.sims["bluebird-logistics"].vehicles[0].vehicle_id
    ok = client.get(f"{ep.base_url}/v3/vehicle_locations/{vid}", headers=h,
                    params={"start_date": "2025-12-01", "end_date": "2026-03-01"})
    assert ok.status_code == 200
    r = client.get(f"{ep.base_url}/v3/vehicle_locations/{vid}", headers=h,
                   params={"start_date": "2025-12-01", "end_date": "2026-03-02"})
    assert r.status_code == 400 and "3 months" in r.json()["message"]
    assert client.get(f"{ep.base_url}/v3/vehicle_locations/999", headers=h,
                      params={"start_date": "2026-03-01", "end_date": "2026-03-02"}).status_code == 404


def test_performance_events(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    h = bearer(motive_consent(client, ep))
    r = client.get(f"{ep.base_url}/v2/driver_performance_events", headers=h, params={
        "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-03-15T00:00:00Z", "per_page": 100})
    body = r.json()
    assert r.status_code == 200 and body["pagination"]["total"] > 0
    kinds = {e["driver_performance_event"]["type"] for e in body["driver_performance_events"]}
    assert kinds <= {"hard_brake", "hard_accel", "hard_corner"}


def test_429s_sometimes_lack_retry_after(client: httpx.Client) -> None:
    with SandboxServer(sandbox_config(motive_rate_per_s=2.0)) as server:
        ep = server.endpoint("motive")
        h = bearer(motive_consent(client, ep))
        limited = []
        for i in range(40):
            r = client.get(f"{ep.base_url}/v1/vehicles", params={"page_no": 1 + i % 7}, headers=h)
            if r.status_code == 429:
                limited.append(r)
        with_header = [r for r in limited if "Retry-After" in r.headers]
        assert with_header and len(with_header) < len(limited)
