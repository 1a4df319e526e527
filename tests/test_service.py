"""The service layer against the sandbox over HTTP: consent, pulls, and trouble kept to one fleet."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.errors import AuthError
from ingest.flows.data_quality import FLOW as DQ
from ingest.service import Service
from ingest.settings import load_settings
from ingest.tsps import endpoints
from partitions import Manifest, open_store
from sandbox.server import SandboxServer
from tests.seaweed import s3_options

FLEETS = {"acme-freight": "samsara", "bluebird-logistics": "motive"}


def _service(tmp: Path, sandbox: SandboxServer, m: Manifest, store_url: str, s3=None) -> Service:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp, sandbox_url=sandbox.base_url, history_months=2,
                             token_key=SecretStr(Fernet.generate_key().decode()))
    return Service(settings, m, open_store(store_url, s3), endpoints(settings), [DQ])


def _consent(svc: Service, fleet: str, tsp: str) -> None:
    location = httpx.get(svc.consent_url(tsp, fleet)).headers["location"]
    q = httpx.URL(location).params
    assert svc.complete_consent(tsp, q["code"], q["state"]) == fleet


def test_a_revoked_fleet_is_isolated_and_the_other_goes_on(sandbox: SandboxServer, tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        svc = _service(tmp_path, sandbox, m, (tmp_path / "store").as_uri())
        for fleet, tsp in FLEETS.items():
            _consent(svc, fleet, tsp)
        assert {f.fleet_id: f.status for f in svc.fleets()} == dict.fromkeys(FLEETS, "consented")
        assert [svc.pull(f).result for f in FLEETS] == ["active", "active"]
        httpx.post(f"{sandbox.base_url}/_sandbox/fleets/acme-freight/revoke").raise_for_status()
        sandbox.world.clock.advance_months(1)
        acme, blue = svc.pull("acme-freight"), svc.pull("bluebird-logistics")
        assert acme.result == "revoked" and "consent" in (acme.error or "")
        assert blue.result == "active" and blue.pings is not None and blue.pings.rows_accepted > 0
        assert m.fleet("acme-freight").status == "revoked"
        assert svc.pull("acme-freight").result == "revoked"  # not retried against a revoked consent
        report = svc.features()
        assert not report.failed
        # Each pulled month computed its features as it completed, the revoked fleet's included.
        for fleet in FLEETS:
            grid = svc.status(fleet)
            assert grid.months and all(v.features["data_quality@1"] == "done" for v in grid.months.values())
        assert svc.status("bluebird-logistics").fleet.status == "active"


def test_a_state_for_one_tsp_is_refused_by_the_other(sandbox: SandboxServer, tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        svc = _service(tmp_path, sandbox, m, (tmp_path / "store").as_uri())
        q = httpx.URL(httpx.get(svc.consent_url("samsara", "acme-freight")).headers["location"]).params
        with pytest.raises(AuthError, match="another TSP"):
            svc.complete_consent("motive", q["code"], q["state"])
        assert m.fleets() == []


def test_a_dead_store_fails_the_pull_and_commits_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    dead = s3_options("http://127.0.0.1:9")  # nothing listens there
    dead = type(dead)(dead.endpoint_url, dead.region, dead.access_key_id, dead.secret_access_key,
                      connect_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1)
    with Manifest(tmp_path / "m.duckdb") as m:
        svc = _service(tmp_path, sandbox, m, "s3://nowhere/lake", dead)
        for fleet, tsp in FLEETS.items():
            _consent(svc, fleet, tsp)
        outcome = svc.pull("acme-freight")
        assert outcome.result == "failed" and "S3 upload" in (outcome.error or "")
        assert m.fleet("acme-freight").status == "failed" and m.raw_partitions() == []
        assert m.completed_slices("acme-freight", "samsara/gps/604800000") == set()
