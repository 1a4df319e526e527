"""The daemon's HTTP API served for real (uvicorn on a free port), called over HTTP.

The daemon here is not started (no scheduler, no worker), so queued work stays queued: these
tests are about what the API accepts, refuses and says.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
import uvicorn
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from pydantic import SecretStr

from common.states import WorkKind, WorkOutcome
from ingest.flows.registry import active_flows
from ingest.runtime.app import build_app
from ingest.runtime.daemon import Daemon
from ingest.runtime.pipeline import Pipeline
from ingest.runtime.workqueue import Work, WorkRecord
from ingest.surfaces.api import OPENAPI, create_app
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.store import LocalStore
from tests.support import loopback
from tests.support.ports import free_port

TOKEN = "api-test-token-" + "x" * 16


def _serve(app, port: int) -> tuple[uvicorn.Server, threading.Thread]:  # type: ignore[no-untyped-def]
    # proxy_headers off, as in the daemon (ingest.surfaces.serve): ingest.wiring.proxies decides what to believe
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, proxy_headers=False, log_level="warning",
                                           lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    return server, t


def _app(tmp: Path, token: str | None):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp, api_token=SecretStr(token) if token else None,
                             token_key=SecretStr(Fernet.generate_key().decode()))
    manifest = Manifest(tmp / "m.duckdb")
    manifest.upsert_fleet("acme-freight", "samsara", "active")
    return build_app(settings, manifest, LocalStore(tmp / "store"), {}, active_flows()), manifest


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Daemon]]:
    service, manifest = _app(tmp_path, TOKEN)
    daemon = Daemon(service)
    port = free_port()
    server, t = _serve(create_app(service, daemon.pipeline, daemon.problems), port)
    try:
        yield f"http://127.0.0.1:{port}", daemon
    finally:
        server.should_exit = True
        t.join(10)
        manifest.close()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_and_metrics_are_open_everything_else_needs_the_token(api) -> None:
    base, _ = api
    assert loopback.get(f"{base}/healthz").json() == {"status": "ok"}
    assert "fleetlake_api_requests" in loopback.get(f"{base}/metrics").text
    for headers in ({}, _auth("wrong"), {"Authorization": TOKEN}, {"Authorization": "Basic abc"}):
        r = loopback.get(f"{base}/fleets", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
        assert "token" in r.json()["error"]
    assert loopback.get(f"{base}/fleets", headers=_auth()).json()[0]["fleet_id"] == "acme-freight"


def test_unknown_and_malformed_fleets_get_clear_4xx(api) -> None:
    base, daemon = api
    r = loopback.get(f"{base}/fleets/nobody/status", headers=_auth())
    assert r.status_code == 404 and "unknown fleet nobody" in r.json()["error"]
    for bad in ("-x", "a.b", "x" * 80, "%20"):
        r = loopback.post(f"{base}/fleets/{bad}/backfill", headers=_auth())
        assert r.status_code in (400, 404) and "error" in r.json(), bad
    assert loopback.post(f"{base}/fleets/a.b/backfill", headers=_auth()).status_code == 400
    r = loopback.post(f"{base}/fleets/acme-freight/backfill", headers=_auth())
    assert r.status_code == 202 and r.json()["queued"] is True
    assert loopback.post(f"{base}/fleets/acme-freight/backfill", headers=_auth()).json()["queued"] is False
    assert daemon.queue.snapshot().queued == ("backfill:acme-freight",)
    assert loopback.get(f"{base}/fleets/acme-freight/features", params={"month": "2025-13"},
                     headers=_auth()).status_code == 400


def test_the_oauth_callback_refuses_bad_requests(api) -> None:
    base, _ = api
    assert loopback.get(f"{base}/oauth/nosuch/callback").status_code == 404
    # No TSP is configured in this test app: even a plausible callback is refused clearly.
    r = loopback.get(f"{base}/oauth/samsara/callback", params={"code": "c", "state": "forged"})
    assert r.status_code == 404 and "samsara" in r.json()["error"]


def test_without_a_configured_token_the_api_refuses_everything(tmp_path: Path) -> None:
    service, manifest = _app(tmp_path, None)
    port = free_port()
    server, t = _serve(create_app(service, None), port)
    try:
        r = loopback.get(f"http://127.0.0.1:{port}/fleets", headers=_auth())
        assert r.status_code == 401 and "FLEETLAKE_API_TOKEN" in r.json()["error"]
        assert loopback.get(f"http://127.0.0.1:{port}/readyz").json()["ready"] is True
    finally:
        server.should_exit = True
        t.join(10)
        manifest.close()


def test_no_answer_shows_an_internal_path_from_a_fleet_error_or_a_work_record(api, tmp_path: Path) -> None:
    base, daemon = api
    spool = f"{tmp_path}/work/fleetlake-writer-3kq/pings-2024-01-000003.arrow"
    daemon.app.manifest.upsert_fleet("acme-freight", "samsara", "failed",
                                     error=f"samsara: GET /fleet/vehicles/stats: no complete answer; then {spool}")
    work = Work(WorkKind.BACKFILL, "acme-freight")
    assert daemon.queue.submit(work) and daemon.queue.take() == work
    daemon.queue.finished(work, WorkRecord(WorkOutcome.ERROR, f"FileNotFoundError: [Errno 2] No such file: '{spool}' "
                                                              f"in {daemon.app.store.url}"))
    fleets = loopback.get(f"{base}/fleets", headers=_auth()).text
    status = loopback.get(f"{base}/fleets/acme-freight/status", headers=_auth()).text
    record = loopback.get(f"{base}/work", headers=_auth()).json()["last"]["backfill:acme-freight"]
    for text in (fleets, status, record):
        assert str(tmp_path) not in text and "fleetlake-writer" not in text and "file://" not in text, text
    assert "<internal>" in record and record.startswith("error: FileNotFoundError"), record
    assert "GET /fleet/vehicles/stats: no complete answer" in fleets  # the TSP's endpoint is no internal path


schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fuzz")
    service, manifest = _app(tmp, TOKEN)
    port = free_port()
    server, t = _serve(create_app(service, Pipeline(service)), port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)
    manifest.close()


# One test per operation, by its own node id: schemathesis' `@schema.parametrize()` gives every
# operation the same node id, and xdist (which schedules by node id) ran only the first of them.
OPERATIONS = [(method, path) for path, ops in OPENAPI["paths"].items() for method in ops
              if method in ("get", "post", "put", "patch", "delete")]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_openapi_fuzz_finds_no_server_errors_and_every_body_fits_its_schema(method: str, path: str,
                                                                            fuzz_target: str) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    @hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=schema[path][method].as_strategy())
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        for headers in (_auth(), {}):
            response = case.call(base_url=fuzz_target, headers=headers)
            # /readyz answers its documented 503 here: this daemon's scheduler is not started.
            documented_503 = case.formatted_path == "/readyz" and response.status_code == 503
            assert response.status_code < 500 or documented_503, (case.method, case.formatted_path,
                                                                   response.text[:300])
            # The body of every answer, errors included, against the schema the document gives it.
            if not documented_503:
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                         content_type_conformance, response_schema_conformance],
                                       headers=headers)

    fuzz()


def test_the_openapi_document_is_valid_and_names_every_route_once() -> None:
    from openapi_spec_validator import validate

    validate(OPENAPI)  # OpenAPI 3.1 with its JSON Schemas
    documented = {(method.upper(), path) for path, ops in OPENAPI["paths"].items() for method in ops}
    service, manifest = _app(Path(tempfile.mkdtemp()), TOKEN)
    try:
        app = create_app(service, Pipeline(service))
        served = {(method, r.path) for r in app.routes if hasattr(r, "methods") and r.path.startswith(
            ("/fleets", "/refresh", "/connect", "/work", "/healthz", "/readyz")) for method in r.methods - {"HEAD"}}
    finally:
        manifest.close()
    assert documented == served
    ids = [op["operationId"] for ops in OPENAPI["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) and all(ids)
    # Every answer has a schema: no bare {"type": "object"} left.
    for ops in OPENAPI["paths"].values():
        for op in ops.values():
            for status, r in op["responses"].items():
                schema = r["content"]["application/json"]["schema"]
                assert "$ref" in schema or "$ref" in schema.get("items", {}), (op["operationId"], status)
