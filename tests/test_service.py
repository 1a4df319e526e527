"""The app's parts against the sandbox over HTTP: consent, pulls through the pipeline, and trouble kept to one fleet."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.errors import AuthError
from ingest.runtime.app import App, build_app
from ingest.runtime.pipeline import Pipeline, Runner, feature_report, pull_outcomes
from ingest.wiring.settings import load_settings
from ingest.wiring.tsps import endpoints
from partitions import Manifest, open_store
from sandbox.server import SandboxServer
from tests.support import loopback
from tests.support.consent import consent, redirect_of
from tests.support.flows import flow
from tests.support.seaweed import s3_options

DQ = flow("data_quality@1")

FLEETS = {"acme-freight": "samsara", "bluebird-logistics": "motive"}


def _app(tmp: Path, sandbox: SandboxServer, m: Manifest, store_url: str, s3=None) -> App:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp, sandbox_url=sandbox.base_url, history_months=2,
                             token_key=SecretStr(Fernet.generate_key().decode()))
    return build_app(settings, m, open_store(store_url, s3), endpoints(settings), [DQ])


def _consent(app: App, fleet: str, tsp: str) -> None:
    assert consent(app.onboarding, tsp, fleet) == fleet


def _pull(app: App, fleet: str):  # type: ignore[no-untyped-def]
    """One fleet's pull through the pipeline: its outcome, and the features its months queued."""
    pipeline = Pipeline(app)
    done = Runner(pipeline).run_until_idle(lambda: pipeline.refresh(fleet))
    (outcome,) = pull_outcomes(done)
    return outcome, feature_report(done)


def test_a_revoked_fleet_is_isolated_and_the_other_goes_on(sandbox: SandboxServer, tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        app = _app(tmp_path, sandbox, m, (tmp_path / "store").as_uri())
        for fleet, tsp in FLEETS.items():
            _consent(app, fleet, tsp)
        assert {f.fleet_id: f.status for f in app.reads.fleets()} == dict.fromkeys(FLEETS, "consented")
        first = [_pull(app, f) for f in FLEETS]
        assert [o.result for o, _ in first] == ["active", "active"]
        # Each pulled month queued its feature work: every month pulled has its windows, none failed.
        assert all(r.months(f) == o.pings.months_changed and not r.failed
                   for (o, r), f in zip(first, FLEETS) if o.pings is not None)
        loopback.post(f"{sandbox.base_url}/_sandbox/fleets/acme-freight/revoke").raise_for_status()
        sandbox.world.clock.advance_months(1)
        (acme, _), (blue, _) = _pull(app, "acme-freight"), _pull(app, "bluebird-logistics")
        assert acme.result == "revoked" and "consent" in (acme.error or "")
        assert blue.result == "active" and blue.pings is not None and blue.pings.rows_accepted > 0
        assert m.fleet("acme-freight").status == "revoked"
        assert _pull(app, "acme-freight")[0].result == "revoked"  # not retried against a revoked consent
        assert app.runs.pending() == []  # nothing left for a later pass
        for fleet in FLEETS:
            grid = app.reads.status(fleet)
            assert grid.months and all(v.features["data_quality@1"] == "done" for v in grid.months.values())
        assert app.reads.status("bluebird-logistics").fleet.status == "active"


def test_a_state_for_one_tsp_is_refused_by_the_other(sandbox: SandboxServer, tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        app = _app(tmp_path, sandbox, m, (tmp_path / "store").as_uri())
        q = redirect_of(app.onboarding.consent_url("samsara", "acme-freight")).params
        with pytest.raises(AuthError, match="another TSP"):
            app.onboarding.complete_consent("motive", q["code"], q["state"])
        assert m.fleets() == []


def test_a_dead_store_fails_the_pull_and_commits_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    dead = s3_options("http://127.0.0.1:9")  # nothing listens there
    dead = type(dead)(dead.endpoint_url, dead.region, dead.access_key_id, dead.secret_access_key,
                      connect_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1)
    with Manifest(tmp_path / "m.duckdb") as m:
        app = _app(tmp_path, sandbox, m, "s3://nowhere/lake", dead)
        for fleet, tsp in FLEETS.items():
            _consent(app, fleet, tsp)
        outcome = app.pulls.pull("acme-freight")
        assert outcome.result == "failed" and "S3 upload" in (outcome.error or "")
        assert m.fleet("acme-freight").status == "failed" and m.raw_partitions() == []
        assert m.completed_slices("acme-freight", "samsara/gps/604800000") == set()
