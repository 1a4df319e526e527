"""The fake Samsara API over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
import pytest

from sandbox.server import SandboxServer
from tests.conftest import NOW, sandbox_config
from tests.support.tsp_http import (
    REDIRECT,
    authorize,
    bearer,
    gps_records,
    iso,
    samsara_consent,
    samsara_pages,
    samsara_token,
)


def test_authorize_redirects_with_code_and_state(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    q = authorize(client, ep.base_url, "/oauth2/authorize", ep.client_id, state="xyz")
    assert q["state"] == ["xyz"] and len(q["code"][0]) > 20
    r = client.get(f"{ep.base_url}/oauth2/authorize", params={"client_id": "nope", "redirect_uri": REDIRECT})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_code_exchange_needs_basic_auth_and_codes_are_single_use(sandbox: SandboxServer,
                                                                 client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    code = authorize(client, ep.base_url, "/oauth2/authorize", ep.client_id)["code"][0]
    r = client.post(f"{ep.base_url}/oauth2/token", data={"grant_type": "authorization_code", "code": code},
                    auth=(ep.client_id, "wrong-secret"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # The failed attempt did not burn the code, but a client-authenticated one does.
    code = authorize(client, ep.base_url, "/oauth2/authorize", ep.client_id)["code"][0]
    ok = samsara_token(client, ep, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert ok.status_code == 200
    tok = ok.json()
    assert tok["expires_in"] == 3600 and tok["token_type"] == "bearer" and tok["refresh_token"]
    again = samsara_token(client, ep, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_a_reused_one_is_invalid_grant(sandbox: SandboxServer,
                                                                  client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    first = samsara_consent(client, ep)
    second = samsara_token(client, ep, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    reused = samsara_token(client, ep, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    r = client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(second))
    assert r.status_code == 200


def test_access_tokens_expire_after_their_ttl(client: httpx.Client) -> None:
    with SandboxServer(sandbox_config(samsara_token_ttl_s=120)) as server:
        ep = server.endpoint("samsara")
        tok = samsara_consent(client, ep)
        assert tok["expires_in"] == 120
        assert client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(tok)).status_code == 200
        server.world.clock.advance(121)
        r = client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(tok))
        assert r.status_code == 401 and "expired" in r.json()["message"]
        fresh = samsara_token(client, ep, grant_type="refresh_token", refresh_token=tok["refresh_token"]).json()
        assert client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(fresh)).status_code == 200


def test_missing_or_unknown_bearer_is_401(sandbox: SandboxServer, client: httpx.Client) -> None:
    base = sandbox.endpoint("samsara").base_url
    assert client.get(f"{base}/fleet/vehicles").status_code == 401
    assert client.get(f"{base}/fleet/vehicles", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_vehicles_and_drivers_paginate(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    seen, after = [], None
    while True:
        page = client.get(f"{ep.base_url}/fleet/vehicles", params={"limit": 2, **({"after": after} if after else {})},
                          headers=h).json()
        seen += [v["id"] for v in page["data"]]
        if not page["pagination"]["hasNextPage"]:
            assert page["pagination"]["endCursor"] == ""
            break
        after = page["pagination"]["endCursor"]
    fleet = sandbox.world.sims["acme-freight"]
    assert sorted(seen) == sorted(v.vehicle_id for v in fleet.vehicles)
    drivers = client.get(f"{ep.base_url}/fleet/drivers", headers=h).json()["data"]
    # one driver per truck, plus partners of team trucks and a relief driver per four trucks
    assert [d["id"] for d in drivers] == [str(900_000 + d.index) for d in sandbox.world.crew("acme-freight").drivers]
    assert len(drivers) > len(fleet.vehicles)


def test_gps_history_pages_cover_the_window_exactly(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    start, end = NOW - timedelta(days=3), NOW
    pages = samsara_pages(client, ep.base_url, h, iso(start), iso(end), limit="100")
    assert len(pages) > 3
    assert all(sum(len(v["gps"]) for v in p["data"]) <= 100 for p in pages)
    assert pages[-1]["pagination"] == {"endCursor": "", "hasNextPage": False}
    got = sorted((vid, p["time"]) for vid, p in gps_records(pages))
    assert len(got) == len(set(got)), "no record twice"
    sim = sandbox.world.sims["acme-freight"]
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    want = []
    for v in sim.vehicles:
        c = sim.pings(v, lo, hi)
        times = np.datetime_as_string(c.ts_ms.astype("datetime64[ms]"), unit="ms")
        want += [(v.vehicle_id, t + "Z") for t in times]
    assert got == sorted(want)


def test_gps_values_match_the_simulator_and_optional_fields_are_left_out(sandbox: SandboxServer,
                                                                        client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    start, end = NOW - timedelta(days=2), NOW
    r = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", headers=h, params={
        "types": "gps,gpsOdometerMeters", "startTime": iso(start), "endTime": iso(end)})
    assert r.status_code == 200 and b"null" not in r.content
    data = r.json()["data"]
    sim = sandbox.world.sims["acme-freight"]
    v0 = next(v for v in sim.vehicles if v.vehicle_id == data[0]["id"])
    c = sim.pings(v0, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    gps = data[0]["gps"]
    for i, p in enumerate(gps[:200]):
        assert p["latitude"] == c.lat[i] and p["longitude"] == c.lon[i]
        assert p["speedMilesPerHour"] == c.speed_mph[i]
        assert ("headingDegrees" in p) == (c.speed_mph[i] > 0)
    odo = data[0]["gpsOdometerMeters"]
    assert len(odo) == len(gps) and odo[0]["value"] == round(c.odometer_mi[0] * 1609.344)


def test_window_is_half_open_on_reading_time(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    sim = sandbox.world.sims["acme-freight"]
    v = sim.vehicles[0]
    c = sim.pings(v, int((NOW - timedelta(days=1)).timestamp() * 1000), int(NOW.timestamp() * 1000))
    t0, t1 = int(c.ts_ms[10]), int(c.ts_ms[20])
    fmt = lambda ms: str(np.datetime64(ms, "ms")) + "Z"  # noqa: E731
    pages = samsara_pages(client, ep.base_url, h, fmt(t0), fmt(t1), vehicleIds=v.vehicle_id)
    times = [p["time"] for _, p in gps_records(pages)]
    assert times[0] == fmt(t0) and fmt(t1) not in times and len(times) == 10


def test_vehicles_without_data_are_left_out(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    # A one-minute window: parked trucks report every 5 minutes, so some have no point in it.
    sim = sandbox.world.sims["acme-freight"]
    for minute in range(0, 600):
        t = NOW - timedelta(minutes=minute + 1)
        lo = int(t.timestamp() * 1000)
        counts = [len(sim.pings(v, lo, lo + 60_000)) for v in sim.vehicles]
        if 0 in counts and any(counts):
            break
    pages = samsara_pages(client, ep.base_url, h, iso(t), iso(t + timedelta(minutes=1)))
    ids = {v["id"] for p in pages for v in p["data"]}
    assert ids == {v.vehicle_id for v, n in zip(sim.vehicles, counts) if n}
    assert all(v["gps"] for p in pages for v in p["data"])


def test_sparse_windows_give_empty_pages_that_still_have_a_next_page(sandbox: SandboxServer,
                                                                     client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    start = sandbox.world.fleets["acme-freight"].spec.history_start - timedelta(days=60)
    pages = samsara_pages(client, ep.base_url, h, iso(start), iso(start + timedelta(days=62)),
                          vehicleIds=sandbox.world.sims["acme-freight"].vehicles[0].vehicle_id)
    assert pages[0]["data"] == [] and pages[0]["pagination"]["hasNextPage"] is True
    assert gps_records(pages), "the data after the empty stretch still arrives"


def test_nothing_after_the_sandbox_now(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    pages = samsara_pages(client, ep.base_url, h, iso(NOW - timedelta(hours=6)), iso(NOW + timedelta(days=5)))
    last = max(p["time"] for _, p in gps_records(pages))
    assert last < iso(NOW)
    sandbox.world.clock.advance(1800)
    pages = samsara_pages(client, ep.base_url, h, iso(NOW - timedelta(hours=6)), iso(NOW + timedelta(days=5)))
    assert max(p["time"] for _, p in gps_records(pages)) >= iso(NOW)


@pytest.mark.parametrize("params, message", [
    ({"types": "gps", "startTime": "yesterday", "endTime": "2026-03-15T00:00:00Z"}, "startTime"),
    ({"types": "gps", "startTime": "2026-03-15T00:00:00Z"}, "endTime"),
    ({"startTime": "2026-03-14T00:00:00Z", "endTime": "2026-03-15T00:00:00Z"}, "types"),
    ({"types": "gps", "startTime": "2026-03-14T00:00:00Z", "endTime": "2026-03-15T00:00:00Z", "limit": "513"},
     "limit"),
    ({"types": "gps", "startTime": "2026-03-14T00:00:00Z", "endTime": "2026-03-15T00:00:00Z", "limit": "0"},
     "limit"),
    ({"types": "gps", "startTime": "2026-03-15T00:00:00Z", "endTime": "2026-03-14T00:00:00Z"}, "endTime"),
    ({"types": "gps", "startTime": "2026-03-14T00:00:00Z", "endTime": "2026-03-15T00:00:00Z", "after": "%%%"},
     "cursor"),
])
def test_bad_history_requests_are_clear_400s(sandbox: SandboxServer, client: httpx.Client, params: dict,
                                             message: str) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    r = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", params=params, headers=h)
    assert r.status_code == 400 and message in r.json()["message"]


def test_a_cursor_only_continues_its_own_query(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    q = {"types": "gps", "startTime": iso(NOW - timedelta(days=2)), "endTime": iso(NOW), "limit": "50"}
    cursor = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", params=q, headers=h).json()[
        "pagination"]["endCursor"]
    other = {**q, "startTime": iso(NOW - timedelta(days=1)), "after": cursor}
    r = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", params=other, headers=h)
    assert r.status_code == 400


def test_rate_limit_answers_429_with_fractional_retry_after(client: httpx.Client) -> None:
    with SandboxServer(sandbox_config(samsara_rate_per_s=5.0)) as server:
        ep = server.endpoint("samsara")
        h = bearer(samsara_consent(client, ep))
        answers = [client.get(f"{ep.base_url}/fleet/vehicles", headers=h) for _ in range(15)]
        limited = [r for r in answers if r.status_code == 429]
        assert limited and any(r.status_code == 200 for r in answers)
        for r in limited:
            wait = float(r.headers["Retry-After"])
            assert 0 < wait <= 1.0 and "." in r.headers["Retry-After"]
            assert "Rate limit" in r.json()["message"]


def test_safety_events_list_the_injected_harsh_events(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    start, end = NOW - timedelta(days=40), NOW
    r = client.get(f"{ep.base_url}/fleet/safety-events", headers=h,
                   params={"startTime": iso(start), "endTime": iso(end)})
    assert r.status_code == 200
    got = r.json()["data"]
    sim = sandbox.world.sims["acme-freight"]
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    want = [e for v in sim.vehicles for e in sim.events(v, lo, hi) if e.kind != "speeding"]
    assert len(got) == len(want) > 0
    assert {e["behaviorLabels"][0]["label"] for e in got} <= {"braking", "acceleration", "harshTurn"}  # the SDK enum
