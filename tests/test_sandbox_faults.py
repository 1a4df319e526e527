"""Each fault kind of the fake servers, switched on over the control API, seen over real HTTP."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import httpx
import pytest

from sandbox.faults import FaultPlan
from sandbox.server import SandboxServer
from tests.conftest import NOW
from tests.support.tsp_http import (
    bearer,
    gps_records,
    iso,
    motive_consent,
    motive_token,
    samsara_consent,
    samsara_pages,
    samsara_token,
)


def set_faults(client: httpx.Client, server: SandboxServer, tsp: str, **plan: float) -> None:
    r = client.post(f"{server.base_url}/_sandbox/faults/{tsp}", json=plan)
    assert r.status_code == 200, r.text


def history(client: httpx.Client, base: str, h: dict, hours: int, **extra: str) -> httpx.Response:
    return client.get(f"{base}/fleet/vehicles/stats/history", headers=h, params={
        "types": "gps", "startTime": iso(NOW - timedelta(hours=hours)), "endTime": iso(NOW), **extra})


def test_5xx_bursts_come_as_json_and_as_text(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    set_faults(client, sandbox, "samsara", error_5xx=1.0, error_5xx_text=0.5, seed=3)
    answers = [history(client, ep.base_url, h, hours) for hours in range(1, 25)]
    assert all(r.status_code in (500, 502, 503, 504) for r in answers)
    kinds = {r.headers["content-type"].split(";")[0] for r in answers}
    assert kinds == {"application/json", "text/plain"}


def test_429_storm(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    set_faults(client, sandbox, "samsara", storm_429=1.0)
    r = history(client, ep.base_url, h, 2)
    assert r.status_code == 429 and 0 < float(r.headers["Retry-After"]) < 1


def test_faults_replay_identically_for_the_same_seed(client: httpx.Client) -> None:
    from tests.conftest import sandbox_config

    # The rate limit is wall-clock driven and not part of the replayable plan: keep it out of reach.
    with SandboxServer(sandbox_config(samsara_rate_per_s=10_000.0)) as server:
        ep = server.endpoint("samsara")
        h = bearer(samsara_consent(client, ep))

        def run() -> list[int]:
            set_faults(client, server, "samsara", error_5xx=0.4, storm_429=0.2, seed=21)
            return [history(client, ep.base_url, h, 1 + i % 5).status_code for i in range(30)]

        first, second = run(), run()
        assert first == second and len(set(first)) >= 3


def test_slow_responses(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    set_faults(client, sandbox, "samsara", slow=1.0, slow_seconds=0.4)
    t0 = time.monotonic()
    assert history(client, ep.base_url, h, 1).status_code == 200
    assert time.monotonic() - t0 >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{ep.base_url}/fleet/vehicles", headers=h, timeout=0.1)


def test_connection_dropped_mid_body(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    set_faults(client, sandbox, "samsara", drop_mid_body=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        history(client, ep.base_url, h, 6)


def test_revoked_consent_kills_tokens_of_that_fleet_only(client: httpx.Client) -> None:
    from sandbox.simulator import FleetSpec
    from sandbox.world import SandboxFleet
    from tests.conftest import sandbox_config

    base = sandbox_config()
    other = SandboxFleet(FleetSpec("second-samsara", 99, 2, base.fleets[0].spec.history_start, 30), "samsara", "2nd")
    with SandboxServer(sandbox_config(fleets=(*base.fleets, other))) as server:
        ep = server.endpoint("samsara")
        a = samsara_consent(client, ep, "acme-freight")
        b = samsara_consent(client, ep, "second-samsara")
        r = client.post(f"{server.base_url}/_sandbox/fleets/acme-freight/revoke")
        assert r.status_code == 200
        dead = client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(a))
        assert dead.status_code == 401 and "revoked" in dead.json()["message"]
        refresh = samsara_token(client, ep, grant_type="refresh_token", refresh_token=a["refresh_token"])
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
        assert client.get(f"{ep.base_url}/fleet/vehicles", headers=bearer(b)).status_code == 200


def test_revoked_motive_consent_and_api_key(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    tok = motive_consent(client, ep)
    key = client.post(f"{sandbox.base_url}/_sandbox/fleets/bluebird-logistics/api-key").json()["api_key"]
    client.post(f"{sandbox.base_url}/_sandbox/fleets/bluebird-logistics/revoke")
    assert client.get(f"{ep.base_url}/v1/vehicles", headers=bearer(tok)).status_code == 401
    assert client.get(f"{ep.base_url}/v1/vehicles", headers={"X-Api-Key": key}).status_code == 401
    r = motive_token(client, ep, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert r.json()["error"] == "invalid_grant"


def test_duplicates_across_pages(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    clean = gps_records(samsara_pages(client, ep.base_url, h, iso(NOW - timedelta(days=2)), iso(NOW), limit="200"))
    set_faults(client, sandbox, "samsara", duplicate_across_pages=1.0)
    dup = gps_records(samsara_pages(client, ep.base_url, h, iso(NOW - timedelta(days=2)), iso(NOW), limit="200"))
    key = lambda recs: [(v, p["time"]) for v, p in recs]  # noqa: E731
    assert len(dup) > len(clean)
    assert set(key(dup)) == set(key(clean))


def test_out_of_order_points(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    set_faults(client, sandbox, "samsara", out_of_order=1.0)
    data = history(client, ep.base_url, h, 24).json()["data"]
    times = [p["time"] for p in data[0]["gps"]]
    assert times != sorted(times) and len(set(times)) == len(times)


def test_late_arriving_pings_make_a_refetch_a_superset(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    set_faults(client, sandbox, "samsara", late_days=0.6, seed=4)
    window = (iso(NOW - timedelta(days=3)), iso(NOW))
    h = bearer(samsara_consent(client, ep))
    early = {(v, p["time"]) for v, p in gps_records(samsara_pages(client, ep.base_url, h, *window))}
    sandbox.world.clock.advance(5 * 86400)
    h = bearer(samsara_consent(client, ep))  # the old token expired with the clock
    late = {(v, p["time"]) for v, p in gps_records(samsara_pages(client, ep.base_url, h, *window))}
    assert early < late, "a later fetch of the same window returns a strict superset"


def test_malformed_records_are_extra_records_of_each_kind(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    clean = history(client, ep.base_url, h, 12).json()
    set_faults(client, sandbox, "samsara", malformed=1.0)
    junk = history(client, ep.base_url, h, 12).json()
    pts = [p for v in junk["data"] for p in v["gps"]]
    assert len(pts) > sum(len(v["gps"]) for v in clean["data"])
    assert any("latitude" not in p for p in pts)
    assert any(p.get("latitude") == "NaN" for p in pts)
    assert any(p.get("latitude") == 0.0 and p.get("longitude") == 0.0 for p in pts)
    assert any(p["time"].startswith("1994") for p in pts)
    assert any(isinstance(p.get("speedMilesPerHour"), str) for p in pts)


def test_numbers_as_strings_keep_their_values(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("samsara")
    h = bearer(samsara_consent(client, ep))
    clean = history(client, ep.base_url, h, 12).json()["data"]
    set_faults(client, sandbox, "samsara", numbers_as_strings=0.5)
    mixed = history(client, ep.base_url, h, 12).json()["data"]
    a = [p for v in clean for p in v["gps"]]
    b = [p for v in mixed for p in v["gps"]]
    assert any(isinstance(p["latitude"], str) for p in b)
    as_floats = lambda p: (p["time"], *(float(p[k]) if k in p else None for k in  # noqa: E731
                                        ("latitude", "longitude", "headingDegrees", "speedMilesPerHour")))
    assert [as_floats(p) for p in b] == [as_floats(p) for p in a]


def test_motive_faults_apply_to_locations(sandbox: SandboxServer, client: httpx.Client) -> None:
    ep = sandbox.endpoint("motive")
    h = bearer(motive_consent(client, ep))
    vid = sandbox.world.sims["bluebird-logistics"].vehicles[0].vehicle_id
    params = {"start_date": "2026-03-10", "end_date": "2026-03-12"}
    clean = client.get(f"{ep.base_url}/v3/vehicle_locations/{vid}", headers=h, params=params).json()
    set_faults(client, sandbox, "motive", malformed=1.0, duplicate_across_pages=1.0)
    bad = client.get(f"{ep.base_url}/v3/vehicle_locations/{vid}", headers=h, params=params).json()
    locs = [x["vehicle_location"] for x in bad["vehicle_locations"]]
    assert len(locs) > len(clean["vehicle_locations"]) + 5
    assert any(x["lat"] is None for x in locs) and any(x["lat"] == "NaN" for x in locs)
    assert any(x["located_at"].startswith("2071") for x in locs)
    good = {x["vehicle_location"]["located_at"] for x in clean["vehicle_locations"]}
    valid = {x["located_at"] for x in locs if isinstance(x["lat"], float) and not math.isnan(x["lat"])
             and x["lat"] != 0.0 and not x["located_at"].startswith("2071") and not isinstance(x["speed"], str)}
    assert valid == good


def test_unknown_fault_settings_are_rejected(sandbox: SandboxServer, client: httpx.Client) -> None:
    r = client.post(f"{sandbox.base_url}/_sandbox/faults/samsara", json={"error_500": 1})
    assert r.status_code == 400 and "error_500" in r.json()["message"]
    r = client.post(f"{sandbox.base_url}/_sandbox/faults/samsara", json={"error_5xx": 3})
    assert r.status_code == 400
    assert FaultPlan.from_dict({"error_5xx": "0.5"}).error_5xx == 0.5
