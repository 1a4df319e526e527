"""The replay TSP: pages rendered once by the sandbox, then served from its recording to the real connectors.

It runs as its own process in front of a real sandbox, as the benchmarks run it; the pulls go
through fleetlake's own connectors over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.oauth import Vault
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.server import SandboxServer, TspEndpoint
from tests.conftest import sandbox_config
from tests.support import loopback
from tests.test_pull_sandbox import assert_same_pings, committed_pings, connect, expected_pings


class _Via:
    """The sandbox as the connectors see it through the replay (same credentials, the replay's URL)."""

    def __init__(self, server: SandboxServer, base_url: str) -> None:
        self.server, self.base_url, self.world = server, base_url, server.world

    def endpoint(self, tsp: str) -> TspEndpoint:
        ep = self.server.endpoint(tsp)
        return TspEndpoint(f"{self.base_url}/{tsp}", ep.client_id, ep.client_secret)


@pytest.fixture
def replayed() -> Iterator[tuple[SandboxServer, str]]:
    with SandboxServer(sandbox_config(samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as server:
        p = subprocess.Popen([sys.executable, "-m", "sandbox.replay", "--upstream", server.base_url,
                              "--samsara-rate", "5000", "--motive-rate", "5000"], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None
            yield server, json.loads(p.stdout.readline())["base_url"]
        finally:
            p.terminate()
            p.wait(timeout=20)


def _pull(via: _Via, tsp: str, fleet: str, tmp: Path) -> int:
    tmp.mkdir(parents=True)
    with Manifest(tmp / "m.duckdb") as m:
        c = connect(via, tsp, fleet, m, Vault(Fernet.generate_key().decode()))  # type: ignore[arg-type]
        store = LocalStore(tmp / "store")
        start = via.world.fleets[fleet].spec.history_start_s * 1000
        now = via.world.clock.now_ms()
        r = pull_fleet(c, store, m, fleet, start, now, PullOptions(work_dir=tmp, with_events=True))
        assert r.slices_pulled == r.slices_planned > 0
        assert_same_pings(committed_pings(store, m, fleet, tmp / "c"), expected_pings(via.server, fleet, now),
                          0.001 if tsp == "samsara" else 0.007)
        return r.rows_accepted


@pytest.mark.parametrize("tsp, fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_a_second_pull_through_the_replay_is_served_from_its_recording_and_commits_the_same(
        replayed: tuple[SandboxServer, str], tmp_path: Path, tsp: str, fleet: str) -> None:
    server, url = replayed
    via = _Via(server, url)
    first = _pull(via, tsp, fleet, tmp_path / "first")  # renders every page once, through the sandbox
    before = loopback.get(f"{url}/_replay/stats").json()
    assert before["misses"] > 0 and before["pages"] > 0
    second = _pull(via, tsp, fleet, tmp_path / "second")  # a new consent, new tokens: same fleet, same pages
    after = loopback.get(f"{url}/_replay/stats").json()
    assert second == first
    assert after["misses"] == before["misses"] and after["hits"] > before["hits"]
    assert after["per_tsp"][tsp]["hits"] - before["per_tsp"][tsp]["hits"] == after["hits"] - before["hits"]
    assert after["bytes"] > before["bytes"]


def test_the_replay_hands_out_its_own_urls_so_a_daemon_pointed_at_it_pulls_through_it(
        replayed: tuple[SandboxServer, str]) -> None:
    # A daemon configured with the replay's URL (sandbox_url) learns the TSPs' URLs from
    # /_sandbox/apps: were they the sandbox's, every page would go around the replay.
    server, url = replayed
    apps = loopback.get(f"{url}/_sandbox/apps").json()
    assert {a["api_url"] for a in apps.values()} == {f"{url}/samsara", f"{url}/motive"}
    assert {a["auth_url"] for a in apps.values()} == {f"{url}/samsara", f"{url}/motive"}


def test_the_replay_refuses_a_token_the_sandbox_never_issued_and_paces_each_token(tmp_path: Path) -> None:
    with SandboxServer(sandbox_config()) as server:
        p = subprocess.Popen([sys.executable, "-m", "sandbox.replay", "--upstream", server.base_url,
                              "--samsara-rate", "2"], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None
            url = json.loads(p.stdout.readline())["base_url"]
            r = loopback.get(f"{url}/samsara/fleet/vehicles", headers={"Authorization": "Bearer not-a-token"})
            assert r.status_code == 401
            via = _Via(server, url)
            with Manifest(tmp_path / "m.duckdb") as m:
                c = connect(via, "samsara", "acme-freight", m, Vault(Fernet.generate_key().decode()))  # type: ignore[arg-type]
                token = c.http.client.auth.credentials.access_token()  # type: ignore[union-attr]
            statuses = [loopback.get(f"{url}/samsara/fleet/vehicles", headers={"Authorization": f"Bearer {token}"},
                                  params={"limit": "512"}).status_code for _ in range(6)]
            assert statuses[0] == 200 and 429 in statuses
        finally:
            p.terminate()
            p.wait(timeout=20)
