"""Pull checkpoints and rotated credentials reach the store, so a manifest rebuilt from the store
alone resumes a half-done backfill without pulling its finished slices again, and holds the
newest refresh token (the old one is dead after a rotation). The sandbox over HTTP; the store on
disk and on SeaweedFS."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from common.states import PullResult
from connectors.oauth import FleetCredentials
from ingest.pull.backfill import PullProgress
from ingest.pull.pulls import NullSink
from ingest.runtime.app import App, build_app
from ingest.wiring.settings import Settings, load_settings
from ingest.wiring.tsps import endpoint_of, endpoints, oauth_client
from partitions import Manifest, layout, rebuild_raw, rebuild_runs
from partitions.control_records import restore_control
from partitions.store import ObjectStore
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support.consent import consent
from tests.support.flows import flow

DQ = flow("data_quality@1")

FLEET = "acme-freight"
STREAM = "samsara/gps/"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Small: two vehicles, a month of minute pings (about a dozen pull slices)."""
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as server:
        yield server


def _settings(tmp: Path, sandbox: SandboxServer, key: str) -> Settings:
    return load_settings(data_dir=tmp / "data", sandbox_url=sandbox.base_url, history_months=1,
                         token_key=SecretStr(key))


def _consent(app: App) -> None:
    assert consent(app.onboarding, "samsara", FLEET) == FLEET


class _Progress(NullSink):
    """A pull sink that hands each progress report to a function (one that stops the pull)."""

    def __init__(self, told: Callable[[PullProgress], None]) -> None:
        self.told = told

    def progress(self, p: PullProgress) -> None:
        self.told(p)


def _rebuilt(store: ObjectStore, path: Path) -> Manifest:
    """What `fleetlake manifest rebuild` does on an empty disk."""
    m = Manifest(path)
    rebuild_raw(store, m)
    rebuild_runs(store, m)
    restore_control(store, m)
    return m


def _slices(m: Manifest) -> set[tuple[str, str]]:
    return {(s, k) for s, k in m._all("SELECT stream, slice_key FROM pull_checkpoints WHERE fleet_id = ?", [FLEET])}


def test_a_rebuilt_manifest_resumes_a_half_done_backfill(sandbox: SandboxServer, store: ObjectStore,
                                                          tmp_path: Path) -> None:
    settings = _settings(tmp_path, sandbox, Fernet.generate_key().decode())
    stop = threading.Event()

    def stop_after_three(p: PullProgress) -> None:
        if p.slices_done >= 3:
            stop.set()  # a SIGTERM mid-backfill: slices fetched in full are committed, the rest wait

    with Manifest(tmp_path / "first.duckdb") as m:
        svc = build_app(settings, m, store, endpoints(settings), [DQ])
        _consent(svc)
        first = svc.pulls.pull(FLEET, stop=stop, sink=_Progress(stop_after_three))
        assert first.result is PullResult.STOPPED and first.pings is not None
        total = first.pings.slices_planned
        done = _slices(m)
        assert 0 < len(done) < total

    # The disk is lost; the store alone restores the checkpoints.
    with _rebuilt(store, tmp_path / "rebuilt.duckdb") as m2:
        assert _slices(m2) == done
        resumed = build_app(settings, m2, store, endpoints(settings), [DQ]).pulls.pull(FLEET)
        assert resumed.result is PullResult.ACTIVE and resumed.pings is not None
        gps_done = {k for s, k in done if s.startswith(STREAM)}
        assert resumed.pings.slices_planned == total - len(gps_done)  # no finished slice pulled again
        assert m2.fleet(FLEET).status == "active"  # type: ignore[union-attr]

    # Without the mirrored records the same rebuild would know of no finished slice.
    for obj in store.list(layout.checkpoints_prefix(FLEET)):
        store.delete(obj.key)
    with _rebuilt(store, tmp_path / "bare.duckdb") as m3:
        assert _slices(m3) == set()


def test_a_rotated_token_is_written_through_and_a_rebuild_pulls_with_it(sandbox: SandboxServer, store: ObjectStore,
                                                                         tmp_path: Path) -> None:
    settings = _settings(tmp_path, sandbox, Fernet.generate_key().decode())
    with Manifest(tmp_path / "first.duckdb") as m:
        svc = build_app(settings, m, store, endpoints(settings), [DQ])
        _consent(svc)
        before = svc.vaults.vault_for(FLEET).open(store.get(layout.credentials_key(FLEET)))
        with oauth_client(endpoint_of(svc.endpoints, "samsara"), settings) as client:
            creds = FleetCredentials(FLEET, client, svc.vaults.vault_for(FLEET), svc.control)
            creds.refresh_after_401(before.access_token)  # the TSP refused the token: one refresh, rotated
        after = svc.vaults.vault_for(FLEET).open(store.get(layout.credentials_key(FLEET)))
        # Compared as booleans: a failing assert must not print a token.
        rotated = after.refresh_token != before.refresh_token and after.access_token != before.access_token
        assert rotated, "the store still holds the tokens from before the rotation"
        same = store.get(layout.credentials_key(FLEET)) == m.load_credentials(FLEET)
        assert same, "the store's sealed credentials differ from the manifest's"

    # Every access token expires; the rebuilt manifest must hold the live (rotated) refresh token.
    sandbox.world.clock.advance(sandbox.world.authorities["samsara"].ttl_s + 60)
    with _rebuilt(store, tmp_path / "rebuilt.duckdb") as m2:
        o = build_app(settings, m2, store, endpoints(settings), [DQ]).pulls.pull(FLEET)
        assert o.result is PullResult.ACTIVE, o.error
