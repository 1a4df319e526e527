"""The sandbox's Motive API against Motive's public reference (tests/contracts/motive_shapes.py).

Motive publishes no SDK; the expected shapes and paging rules are written, with their sources,
in one module. Every response of a pull (every route, every page, faults and quirks on) must
fit them, and the paging defaults (25 a page, at most 100) must hold when the client asks for
nothing or for too much.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pydantic
import pytest
from cryptography.fernet import Fernet

from connectors.oauth import Vault
from partitions import Manifest
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.contracts import motive_shapes as shapes
from tests.support import loopback
from tests.support.tsp_http import bearer, motive_consent
from tests.test_pull_sandbox import connect

DAY_MS = 86_400_000
FLEET = "bluebird-logistics"
FAULTS = {"seed": 8, "error_5xx": 0.05, "storm_429": 0.05, "drop_mid_body": 0.03, "duplicate_across_pages": 0.3,
          "out_of_order": 0.3, "numbers_as_strings": 0.05}


def test_the_shapes_refuse_what_the_reference_rules_out() -> None:
    """Guards the contract test against shapes that accept anything."""
    with pytest.raises(pydantic.ValidationError):
        shapes.Pagination(per_page=500, page_no=1, total=3)
    with pytest.raises(pydantic.ValidationError):
        shapes.VehicleLocation(id=1, located_at="yesterday", lat=1.0, lon=2.0)
    with pytest.raises(pydantic.ValidationError, match="source"):  # [DRP2]: 1, 2 or 3
        shapes.DrivingPeriod(id=1, type="driving", start_time="2026-01-01T00:00:00Z", source=7, vehicle={"id": 1})
    with pytest.raises(AssertionError, match="per_page"):
        shapes.check_page(25, shapes.Pagination(per_page=25, page_no=1, total=30), 100, 1)


@pytest.mark.parametrize("quirks", [Quirks(), Quirks.realistic(seed=9)], ids=["plain", "all-quirks"])
def test_every_motive_response_of_a_pull_fits_the_public_reference(tmp_path: Path, quirks: Quirks) -> None:
    with SandboxServer(sandbox_config(motive_rate_per_s=1000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        assert loopback.post(f"{server.base_url}/_sandbox/faults/motive", json=FAULTS).status_code == 200
        server.world.set_quirks(FLEET, quirks)
        connector = connect(server, "motive", FLEET, manifest, Vault(Fernet.generate_key().decode()))
        seen: list[tuple[str, dict, bytes]] = []
        get = connector.http.get

        def recording_get(path: str, params: dict | None = None) -> httpx.Response:
            r = get(path, params)
            seen.append((path, dict(params or {}), r.content))
            return r

        connector.http.get = recording_get  # type: ignore[method-assign]
        now = server.world.clock.now_ms()
        vehicles = connector.vehicles()
        connector.drivers()
        connector.events_slice(now - 28 * DAY_MS, now)
        hos = (connector.hos.assignments(now - 40 * DAY_MS, now), connector.hos.hos_logs(now - 7 * DAY_MS, now),
               connector.hos.hos_violations(now - 50 * DAY_MS, now))
        for v in vehicles:
            connector.gps_slice(v.vehicle_id, now - 7 * DAY_MS, now)

    routes, types, statuses, violations = set(), set(), set(), set()
    for path, params, body in seen:
        model = shapes.model_for(path)
        parsed = model.model_validate(json.loads(body))  # raises on any mismatch
        items = next(v for k, v in parsed.__dict__.items() if isinstance(v, list))
        shapes.check_page(len(items), getattr(parsed, "pagination", None), params.get("per_page"),
                          params.get("page_no", 1))
        routes.add(model)
        if model is shapes.PerformanceEventsResponse:
            types |= {i.driver_performance_event.type for i in parsed.driver_performance_events}
        if model is shapes.LogsResponse:
            statuses |= {e.event.type for i in parsed.logs for e in i.log.events}
        if model is shapes.HosViolationsResponse:
            violations |= {i.hos_violation.type for i in parsed.hos_violations}
        if model is shapes.DrivingPeriodsResponse:
            start, end = params["start_date"], params["end_date"]
            assert (date.fromisoformat(end) - date.fromisoformat(start)).days < 30, "a driving-period range of 30 days"
    assert routes == set(shapes.ROUTES.values()), "every route the connector calls was checked"
    assert types and types <= shapes.PERFORMANCE_EVENT_TYPES
    assert all(t.num_rows for t in hos), "assignments, HOS logs and violations were served"
    assert {"driving", "on_duty", "off_duty"} <= statuses <= shapes.DUTY_STATUSES
    assert violations and violations <= shapes.VIOLATION_TYPES
    # The HOS routes' quirks were among what was checked (sandbox/record_quirks.py).
    periods = [p["driving_period"] for path, _, b in seen if path == "/v1/driving_periods"
               for p in json.loads(b)["driving_periods"]]
    assert any("status" not in p for p in periods) == bool(quirks.absent_optional), "status left out (if available)"
    assert any("source" in p for p in periods) == quirks.extra_fields
    paged = [p for p, _, b in seen if p.startswith("/v3/") and b'"pagination"' in b]
    assert bool(paged) == quirks.paged_history


def test_paged_history_defaults_to_25_and_caps_at_100(client: httpx.Client) -> None:
    with SandboxServer(sandbox_config()) as server:
        server.world.set_quirks(FLEET, Quirks(paged_history=True))
        ep = server.endpoint("motive")
        h = bearer(motive_consent(client, ep, FLEET))
        vid = server.world.sims[FLEET].vehicles[0].vehicle_id
        dates = {"start_date": "2026-03-01", "end_date": "2026-03-03"}
        url = f"{ep.base_url}/v3/vehicle_locations/{vid}"
        default = shapes.VehicleLocationsResponse.model_validate(client.get(url, headers=h, params=dates).json())
        capped = shapes.VehicleLocationsResponse.model_validate(
            client.get(url, headers=h, params={**dates, "per_page": 500, "page_no": 2}).json())
    assert default.pagination is not None and capped.pagination is not None
    assert default.pagination.total > 200
    shapes.check_page(len(default.vehicle_locations), default.pagination, None, 1)
    shapes.check_page(len(capped.vehicle_locations), capped.pagination, 500, 2)
    assert len(default.vehicle_locations) == 25 and len(capped.vehicle_locations) == 100
