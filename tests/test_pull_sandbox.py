"""Pull whole fleets from the sandbox over real HTTP, faults on; compare with the simulator."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cryptography.fernet import Fernet

from common.errors import ConsentRevoked
from connectors.http import RetryPolicy
from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, StateSigner, Vault
from connectors.providers import oauth_provider, open_connector
from connectors.redact import install_log_scrubber
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest, read_month
from partitions.store import LocalStore
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.support import loopback

FAULTS = {"seed": 5, "error_5xx": 0.05, "storm_429": 0.05, "drop_mid_body": 0.03, "duplicate_across_pages": 0.3,
          "out_of_order": 0.3, "malformed": 0.2, "numbers_as_strings": 0.05}
REDIRECT = "http://127.0.0.1:9/oauth/callback"
FAST = RetryPolicy(max_attempts=10, max_total_s=60, base_delay_s=0.01, max_delay_s=0.2, max_retry_after_s=1.0)


def connect(server: SandboxServer, tsp: str, fleet: str, manifest: Manifest, vault: Vault):  # type: ignore[no-untyped-def]
    ep = server.endpoint(tsp)
    client = OAuthClient(oauth_provider(tsp, ep.base_url, ep.client_id, ep.client_secret, REDIRECT))
    signer = StateSigner(b"s" * 32)
    state = signer.make(tsp)
    r = loopback.get(client.consent_url(state, fleet=fleet))
    q = parse_qs(urlparse(r.headers["location"]).query)
    signer.verify(q["state"][0], tsp)
    creds = FleetCredentials.connect(fleet, client, vault, manifest, q["code"][0])
    return open_connector(tsp, fleet, ep.base_url, BearerAuth(creds), 500.0, policy=FAST)


def committed_pings(store: LocalStore, manifest: Manifest, fleet: str, tmp: Path) -> pa.Table:
    parts = [read_month(store, manifest, fleet, p.month, tmp) for p in manifest.raw_partitions(fleet, "pings")]
    return pa.concat_tables(parts) if parts else pa.table({})


def expected_pings(server: SandboxServer, fleet: str, until_ms: int) -> dict[str, np.ndarray]:
    """The simulator's pings that have reached the TSP by the sandbox's now."""
    sim = server.world.sims[fleet]
    lo = sim.spec.history_start_s * 1000
    cols = [server.world.visible_pings(fleet, v, lo, until_ms) for v in sim.vehicles]
    return {k: np.concatenate([getattr(c, k) for c in cols]) for k in ("ts_ms", "lat", "lon", "speed_mph",
                                                                       "odometer_mi")} | {
        "vehicle_id": np.concatenate([[c.vehicle_id] * len(c) for c in cols])}


def assert_same_pings(got: pa.Table, want: dict[str, np.ndarray], odo_tol: float) -> None:
    got = got.set_column(1, "vehicle_id", pc.cast(got["vehicle_id"], pa.string()))
    got = got.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    order = np.lexsort((want["ts_ms"], want["vehicle_id"]))
    assert got.num_rows == len(order), "none lost, none duplicated"
    assert got["vehicle_id"].to_pylist() == want["vehicle_id"][order].tolist()
    assert np.array_equal(np.asarray(pc.cast(got["ts"], pa.int64())), want["ts_ms"][order])
    assert np.array_equal(got["lat"].to_numpy(), want["lat"][order])
    assert np.array_equal(got["lon"].to_numpy(), want["lon"][order])
    assert np.allclose(got["speed_mph"].to_numpy(), want["speed_mph"][order], atol=0.01)
    assert np.allclose(got["odometer_mi"].to_numpy(), want["odometer_mi"][order], atol=odo_tol)


@pytest.fixture
def world(tmp_path: Path):
    cfg = sandbox_config(samsara_rate_per_s=600.0, motive_rate_per_s=600.0)
    with SandboxServer(cfg) as server:
        for tsp in ("samsara", "motive"):
            r = loopback.post(f"{server.base_url}/_sandbox/faults/{tsp}", json=FAULTS)
            assert r.status_code == 200
        with Manifest(tmp_path / "m.duckdb") as manifest:
            yield server, manifest, LocalStore(tmp_path / "store"), Vault(Fernet.generate_key().decode())


@pytest.mark.parametrize("tsp, fleet, odo_tol", [("samsara", "acme-freight", 0.001),
                                                 ("motive", "bluebird-logistics", 0.007)])
def test_backfill_with_faults_commits_exactly_the_simulators_pings(world, tmp_path: Path, tsp: str, fleet: str,
                                                                   odo_tol: float) -> None:
    server, manifest, store, vault = world
    connector = connect(server, tsp, fleet, manifest, vault)
    start = server.world.fleets[fleet].spec.history_start_s * 1000
    now = server.world.clock.now_ms()
    report = pull_fleet(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
    assert report.slices_pulled == report.slices_planned > 0
    assert sum(report.quarantined.values()) > 0, "the malformed records were quarantined, not lost"
    assert connector.http.requests > report.slices_pulled  # faults forced retries
    assert_same_pings(committed_pings(store, manifest, fleet, tmp_path / "c"), expected_pings(server, fleet, now),
                      odo_tol)
    rows_checkpointed = manifest.conn.execute("SELECT sum(rows) FROM pull_checkpoints WHERE fleet_id = ?",
                                              [fleet]).fetchone()[0]
    assert 0 < rows_checkpointed <= report.rows_accepted + sum(report.quarantined.values())
    # Resuming finds nothing left to pull but the lookback.
    again = pull_fleet(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
    assert again.slices_planned < report.slices_planned
    assert all(c.status == "unchanged" for c in again.commits if c.dataset == "pings")


def test_monthly_refresh_pulls_only_new_data(world, tmp_path: Path) -> None:
    server, manifest, store, vault = world
    fleet = "acme-freight"
    connector = connect(server, "samsara", fleet, manifest, vault)
    start = server.world.fleets[fleet].spec.history_start_s * 1000
    first = pull_fleet(connector, store, manifest, fleet, start, server.world.clock.now_ms(),
                       PullOptions(work_dir=tmp_path))
    before = {p.month: p.fingerprint for p in manifest.raw_partitions(fleet, "pings")}
    server.world.clock.advance_months(1)
    now = server.world.clock.now_ms()
    refresh = pull_fleet(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
    assert refresh.slices_planned < first.slices_planned / 2
    after = {p.month: p.fingerprint for p in manifest.raw_partitions(fleet, "pings")}
    assert {m for m in after if before.get(m) != after[m]} <= {"2026-03", "2026-04"}
    assert "2026-04" in after and after["2026-01"] == before["2026-01"] and after["2026-02"] == before["2026-02"]
    assert_same_pings(committed_pings(store, manifest, fleet, tmp_path / "c"), expected_pings(server, fleet, now),
                      0.001)


def test_revoked_consent_stops_that_fleet_only(world, tmp_path: Path) -> None:
    server, manifest, store, vault = world
    a = connect(server, "samsara", "acme-freight", manifest, vault)
    b = connect(server, "motive", "bluebird-logistics", manifest, vault)
    loopback.post(f"{server.base_url}/_sandbox/fleets/acme-freight/revoke")
    now = server.world.clock.now_ms()
    with pytest.raises(ConsentRevoked):
        pull_fleet(a, store, manifest, "acme-freight", now - 10 * 86_400_000, now, PullOptions(work_dir=tmp_path))
    report = pull_fleet(b, store, manifest, "bluebird-logistics", now - 10 * 86_400_000, now,
                        PullOptions(work_dir=tmp_path))
    assert report.rows_accepted > 0


def test_no_token_or_secret_reaches_the_logs(world, tmp_path: Path) -> None:
    server, manifest, store, vault = world
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_log_scrubber()
    try:
        connector = connect(server, "samsara", "acme-freight", manifest, vault)
        now = server.world.clock.now_ms()
        server.world.clock.advance(3700)  # expire the access token mid-pull: refresh + rotation
        pull_fleet(connector, store, manifest, "acme-freight", now - 14 * 86_400_000, now,
                   PullOptions(work_dir=tmp_path))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = buf.getvalue()
    assert "GET" in text or "HTTP Request" in text, "the pull did log its requests"
    creds = FleetCredentials("acme-freight", connector.http.client.auth.credentials.client, vault, manifest)
    tokens = vault.open(manifest.load_credentials("acme-freight"))
    secrets = [tokens.access_token, tokens.refresh_token, server.endpoint("samsara").client_secret,
               creds.access_token()]
    for s in secrets:
        assert s and s not in text


def test_late_pings_are_picked_up_by_the_refresh(tmp_path: Path) -> None:
    with SandboxServer(sandbox_config(samsara_rate_per_s=600.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        loopback.post(f"{server.base_url}/_sandbox/faults/samsara", json={"late_days": 0.5, "seed": 2})
        store, vault, fleet = LocalStore(tmp_path / "store"), Vault(Fernet.generate_key().decode()), "acme-freight"
        connector = connect(server, "samsara", fleet, manifest, vault)
        start = server.world.fleets[fleet].spec.history_start_s * 1000
        now = server.world.clock.now_ms()
        pull_fleet(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
        first = committed_pings(store, manifest, fleet, tmp_path / "c1").num_rows
        sim = server.world.sims[fleet]
        generated = sum(len(sim.pings(v, start, now)) for v in sim.vehicles)
        assert first < generated, "some pings had not arrived yet"
        before = {p.month: p.fingerprint for p in manifest.raw_partitions(fleet, "pings")}
        server.world.clock.advance(4 * 86400)
        later = server.world.clock.now_ms()
        connector = connect(server, "samsara", fleet, manifest, vault)
        pull_fleet(connector, store, manifest, fleet, start, later, PullOptions(work_dir=tmp_path))
        after = {p.month: p.fingerprint for p in manifest.raw_partitions(fleet, "pings")}
        assert after["2026-03"] != before["2026-03"] and after["2026-01"] == before["2026-01"]
        assert_same_pings(committed_pings(store, manifest, fleet, tmp_path / "c2"),
                          expected_pings(server, fleet, later), 0.001)


@pytest.mark.slow
@pytest.mark.parametrize("tsp, fleet, odo_tol", [("samsara", "acme-freight", 0.001),
                                                 ("motive", "bluebird-logistics", 0.007)])
def test_a_backfill_killed_with_sigkill_resumes_to_the_same_result(tmp_path: Path, tsp: str, fleet: str,
                                                                   odo_tol: float) -> None:
    import json
    import random
    import signal
    import subprocess
    import sys
    import time

    with SandboxServer(sandbox_config(samsara_rate_per_s=600.0, motive_rate_per_s=600.0)) as server:
        loopback.post(f"{server.base_url}/_sandbox/faults/{tsp}", json=FAULTS)
        key = Fernet.generate_key().decode()
        with Manifest(tmp_path / "m.duckdb") as manifest:
            connect(server, tsp, fleet, manifest, Vault(key))  # consent; tokens stored encrypted
        ep = server.endpoint(tsp)
        start = server.world.fleets[fleet].spec.history_start_s * 1000
        now = server.world.clock.now_ms()
        cfg = {"manifest": str(tmp_path / "m.duckdb"), "store": str(tmp_path / "store"), "work": str(tmp_path),
               "tsp": tsp, "fleet": fleet, "base_url": ep.base_url, "client_id": ep.client_id,
               "client_secret": ep.client_secret, "redirect": REDIRECT, "key": key, "start": start, "now": now}
        rng = random.Random(7)
        for run in range(3):
            p = subprocess.Popen([sys.executable, "-m", "tests.support.pull_worker", json.dumps(cfg)],
                                 stdout=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "started"
            if run == 0:
                # The first run is killed only after a whole month was committed and checkpointed
                # (the worker says so), so the resume below always has finished slices to skip.
                line = p.stdout.readline().strip()
                assert line.startswith("month "), line
            # Kill only after this run committed something new (a Delta log entry appeared), at a
            # random point after it: each kill then lands mid-work whatever the machine's speed.
            store_dir = tmp_path / "store"
            before = len(list(store_dir.rglob("_delta_log/*.json")))
            deadline = time.monotonic() + 120
            while len(list(store_dir.rglob("_delta_log/*.json"))) <= before:
                assert p.poll() is None and time.monotonic() < deadline, "the pull made no progress"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        from ingest.pull.backfill import plan_slices

        stream = f"{tsp}/gps/{7 * 86_400_000}"
        with Manifest(tmp_path / "m.duckdb") as manifest:
            done_before = manifest.completed_slices(fleet, stream)
        vehicles = [v.vehicle_id for v in server.world.sims[fleet].vehicles]
        total = len(plan_slices(vehicles, start, now, 7 * 86_400_000, set()))
        p = subprocess.run([sys.executable, "-m", "tests.support.pull_worker", json.dumps(cfg)], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        final = json.loads(p.stdout.strip().splitlines()[-1])
        assert done_before, "the killed runs had checkpointed some windows"
        assert final["planned"] == total - len(done_before), "completed windows are not pulled again"
        with Manifest(tmp_path / "m.duckdb") as manifest:
            assert_same_pings(committed_pings(LocalStore(tmp_path / "store"), manifest, fleet, tmp_path / "c"),
                              expected_pings(server, fleet, now), odo_tol)


def test_a_tsp_clock_ahead_of_this_machine_is_not_the_future(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    ahead = datetime.fromtimestamp(time.time() + 40 * 86400, tz=timezone.utc)
    cfg = sandbox_config(now=ahead, samsara_rate_per_s=600.0)
    with SandboxServer(cfg) as server, Manifest(tmp_path / "m.duckdb") as manifest:
        fleet = "acme-freight"
        connector = connect(server, "samsara", fleet, manifest, Vault(Fernet.generate_key().decode()))
        now = server.world.clock.now_ms()
        report = pull_fleet(connector, LocalStore(tmp_path / "s"), manifest, fleet, now - 5 * 86_400_000, now,
                            PullOptions(work_dir=tmp_path))
        assert report.rows_accepted > 0 and report.quarantined == {}


@pytest.mark.parametrize("tsp, fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_safety_events_land_in_raw_events(world, tmp_path: Path, tsp: str, fleet: str) -> None:
    from ingest.pull.backfill import pull_events

    server, manifest, store, vault = world
    connector = connect(server, tsp, fleet, manifest, vault)
    start = server.world.fleets[fleet].spec.history_start_s * 1000
    now = server.world.clock.now_ms()
    report = pull_events(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
    sim = server.world.sims[fleet]
    want = sorted((v.vehicle_id, e.ts_ms, {"sharp_turn": "harsh_turn"}.get(e.kind, e.kind))
                  for v in sim.vehicles for e in sim.events(v, start, now) if e.kind != "speeding")
    parts = manifest.raw_partitions(fleet, "events")
    got = pa.concat_tables([read_month(store, manifest, fleet, p.month, tmp_path / "c", dataset="events")
                            for p in parts])
    got_rows = sorted(zip(pc.cast(got["vehicle_id"], pa.string()).to_pylist(),
                          pc.cast(got["ts"], pa.int64()).to_pylist(), pc.cast(got["kind"], pa.string()).to_pylist()))
    assert report.rows_accepted == len(want) > 0
    if tsp == "motive":  # Motive reports whole seconds
        want = [(v, ts // 1000 * 1000, k) for v, ts, k in want]
    assert got_rows == want
    again = pull_events(connector, store, manifest, fleet, start, now, PullOptions(work_dir=tmp_path))
    assert again.slices_planned < report.slices_planned
    assert all(c.status == "unchanged" for c in again.commits if c.dataset == "events")


@pytest.mark.parametrize("tsp, fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_vehicles_and_drivers_are_listed(world, tsp: str, fleet: str) -> None:
    server, manifest, _, vault = world
    connector = connect(server, tsp, fleet, manifest, vault)
    sim = server.world.sims[fleet]
    assert sorted(v.vehicle_id for v in connector.vehicles()) == sorted(v.vehicle_id for v in sim.vehicles)
    drivers = connector.drivers()
    # the crew's drivers (Motive's fleet admin is no driver), with ids and names only
    assert len(drivers) == len(server.world.crew(fleet).drivers) and all(d.driver_id and d.name for d in drivers)
