"""The official Samsara SDK (`samsara-api`, Fern-generated pydantic models) judges the sandbox.

Our sandbox and our connectors are written by the same hands, so the sandbox cannot be the only
judge of what Samsara sends. Every response the connector receives in a pull (every route it
calls, every page, transport and data faults on, every quirk on) is parsed here with the SDK's
own response model for that route, through the SDK's own parser; any validation error fails.
Labels are checked against the SDK's enum too: the SDK accepts unknown labels (its enums are
open), which would otherwise let a wrong label through.

Faults that are junk on purpose (`malformed`: a latitude of true, a speed of "fast") are left
off here: they are outside any contract by design, and test_quirks / test_pull_sandbox cover
them. `numbers_as_strings` stays on: the SDK (pydantic, lax mode) accepts "41.2" for a float.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import httpx
import pydantic
import pytest
from cryptography.fernet import Fernet
from samsara.core.pydantic_utilities import parse_obj_as
from samsara.types import (
    DriverVehicleAssignmentsV2GetDriverVehicleAssignmentsResponseBody,
    HosLogsResponse,
    HosViolationsGetHosViolationsResponseBody,
    ListDriversResponse,
    SafetyEventsListResponse,
    VehiclesListVehiclesResponseBody,
    VehicleStatsListResponse,
)
from samsara.types.hos_log_entry_hos_status_type import HosLogEntryHosStatusType
from samsara.types.hos_violation_object_response_body_type import HosViolationObjectResponseBodyType
from samsara.types.safety_event_behavior_label import SafetyEventBehaviorLabel

from connectors.oauth import Vault
from partitions import Manifest
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.support import loopback
from tests.test_pull_sandbox import connect

DAY_MS = 86_400_000
FAULTS = {"seed": 8, "error_5xx": 0.05, "storm_429": 0.05, "drop_mid_body": 0.03, "duplicate_across_pages": 0.3,
          "out_of_order": 0.3, "numbers_as_strings": 0.05}
# The SDK's response model of each route the connector calls (found in samsara/*/raw_client.py).
MODELS: dict[str, type[pydantic.BaseModel]] = {
    "/fleet/vehicles": VehiclesListVehiclesResponseBody,
    "/fleet/drivers": ListDriversResponse,
    "/fleet/vehicles/stats/history": VehicleStatsListResponse,
    "/fleet/safety-events": SafetyEventsListResponse,
    "/fleet/driver-vehicle-assignments": DriverVehicleAssignmentsV2GetDriverVehicleAssignmentsResponseBody,
    "/fleet/hos/logs": HosLogsResponse,
    "/fleet/hos/violations": HosViolationsGetHosViolationsResponseBody,
}


def official_labels() -> set[str]:
    """The closed part of the SDK's open enum `Union[Literal[...], Any]`."""
    ann = SafetyEventBehaviorLabel.model_fields["label"].annotation
    return {v for arg in typing.get_args(ann) if typing.get_origin(arg) is typing.Literal
            for v in typing.get_args(arg)}


def test_the_sdk_is_strict_where_it_matters() -> None:
    """Guards the contract test against a permissive SDK: the old sandbox's vehicle list fails it."""
    old = {"data": [{"id": "1", "name": "T1"}], "pagination": {"endCursor": "", "hasNextPage": False}}
    with pytest.raises(pydantic.ValidationError, match="createdAtTime"):
        parse_obj_as(VehiclesListVehiclesResponseBody, old)
    bad_point = {"data": [{"id": "1", "gps": [{"time": "2026-01-01T00:00:00Z", "latitude": 1.0}]}],
                 "pagination": {"endCursor": "", "hasNextPage": False}}
    with pytest.raises(pydantic.ValidationError, match="longitude"):
        parse_obj_as(VehicleStatsListResponse, bad_point)
    assert {"braking", "acceleration", "harshTurn"} <= official_labels()
    assert "harshBrake" not in official_labels()


@pytest.mark.parametrize("quirks", [Quirks(), Quirks.realistic(seed=9)], ids=["plain", "all-quirks"])
def test_every_samsara_response_of_a_pull_parses_with_the_official_sdk(tmp_path: Path, quirks: Quirks) -> None:
    cfg = sandbox_config(samsara_rate_per_s=1000.0)
    with SandboxServer(cfg) as server, Manifest(tmp_path / "m.duckdb") as manifest:
        assert loopback.post(f"{server.base_url}/_sandbox/faults/samsara", json=FAULTS).status_code == 200
        assert loopback.post(f"{server.base_url}/_sandbox/quirks/acme-freight",
                          json=quirks.as_dict()).status_code == 200
        connector = connect(server, "samsara", "acme-freight", manifest, Vault(Fernet.generate_key().decode()))
        seen: list[tuple[str, bytes]] = []
        get = connector.http.get

        def recording_get(path: str, params: dict | None = None) -> httpx.Response:
            r = get(path, params)
            seen.append((path, r.content))
            return r

        connector.http.get = recording_get  # type: ignore[method-assign]
        now = server.world.clock.now_ms()
        start = now - 21 * DAY_MS
        vehicles = connector.vehicles()
        connector.drivers()
        connector.events_slice(server.world.fleets["acme-freight"].spec.history_start_s * 1000, now)
        month_ago = now - 31 * DAY_MS
        hos = (connector.hos.assignments(month_ago, now), connector.hos.hos_logs(month_ago, now),
               connector.hos.hos_violations(start - 60 * DAY_MS, now))
        for v in vehicles:
            for w in range(start, now, connector.slice_ms):
                connector.gps_slice(v.vehicle_id, w, min(w + connector.slice_ms, now))
        # The decorated form of the history route, which the connector reads when it is present.
        decorated = connector.http.get("/fleet/vehicles/stats/history", {
            "types": "gps", "decorations": "gpsOdometerMeters", "vehicleIds": vehicles[0].vehicle_id,
            "startTime": "2026-03-01T00:00:00Z", "endTime": "2026-03-02T00:00:00Z"})

    by_route: dict[str, int] = {}
    labels: set[str] = set()
    statuses: set[str] = set()
    violation_types: set[str] = set()
    for path, body in seen:
        parsed = parse_obj_as(MODELS[path], json.loads(body))  # raises on any validation error
        by_route[path] = by_route.get(path, 0) + 1
        if path == "/fleet/safety-events":
            labels |= {lb.label for e in parsed.data or [] for lb in e.behavior_labels or []}
        if path == "/fleet/hos/logs":
            statuses |= {x.hos_status_type for d in parsed.data for x in d.hos_logs or []}
        if path == "/fleet/hos/violations":
            violation_types |= {v.type for g in parsed.data for v in g.violations}
    assert set(by_route) == set(MODELS), "every route the connector calls was checked"
    assert by_route["/fleet/vehicles/stats/history"] > 3 * len(vehicles), "many history pages"
    assert labels and labels <= official_labels(), labels - official_labels()
    assert b'"decorations"' in decorated.content
    assert all(t.num_rows for t in hos), "assignments, HOS logs and violations were served"
    assert by_route["/fleet/hos/logs"] > 1, "HOS logs page by drivers"
    assert statuses and statuses <= closed_values(HosLogEntryHosStatusType), statuses
    assert {"driving", "onDuty", "offDuty"} <= statuses
    assert violation_types and violation_types <= closed_values(HosViolationObjectResponseBodyType), violation_types
    # The HOS routes' quirks were among what the SDK parsed (sandbox/record_quirks.py, sandbox/paging.py).
    hos = [(path, json.loads(body)) for path, body in seen if path.startswith("/fleet/hos/") or path in (
        "/fleet/drivers", "/fleet/driver-vehicle-assignments")]
    entries = [e for path, b in hos if path == "/fleet/hos/logs" for g in b["data"] for e in g["hosLogs"]]
    in_vehicle = [e for e in entries if "vehicle" in e]
    assert in_vehicle and any("remark" in e for e in entries)
    located = sum("logRecordedLocation" in e for e in in_vehicle)
    assert (located == len(in_vehicle)) == (not quirks.absent_optional), "optional fields left out as the quirk says"
    assert any(not b["data"] for _, b in hos) == quirks.page_sizes, "an empty last page only when pages are cut"
    assert any("logMetaData" in e for e in entries) == quirks.extra_fields


def closed_values(open_enum: object) -> set[str]:
    """The Literal values of one of the SDK's open enums (`Union[Literal[...], Any]`)."""
    return {v for arg in typing.get_args(open_enum) if typing.get_origin(arg) is typing.Literal
            for v in typing.get_args(arg)}
