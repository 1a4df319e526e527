"""`fleetlake run` end to end: a real process against the sandbox over HTTP and SeaweedFS over S3.

consent through the callback -> backfill (SIGTERM in the middle, restart) -> features -> the
sandbox clock moves one month -> the scheduled refresh -> asserted on the manifest and the data.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import httpx
import pyarrow.compute as pc
import pytest
from cryptography.fernet import Fernet

from common.months import month_bounds_ms
from ingest.flows.registry import active_flows
from partitions import Manifest, open_store, read_month
from sandbox.faults import FaultPlan
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.ports import free_port
from tests.support.seaweed import BUCKET, s3_options

pytestmark = pytest.mark.slow
TOKEN = "e2e-" + uuid.uuid4().hex
FLEETS = {"acme-freight": "samsara", "bluebird-logistics": "motive"}


def _wait(what: str, check: Callable[[], Any], timeout: float = 240.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Daemon:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "run"], env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        port = self.env["FLEETLAKE_HTTP_PORT"]
        _wait("healthz", lambda: loopback.get(f"http://127.0.0.1:{port}/healthz").status_code == 200, 60)

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def world(tmp_path: Path, seaweed_s3: str):  # type: ignore[no-untyped-def]
    base = default_config(seed=11, vehicles=3, ping_interval_s=20, history_months=4, now=NOW)
    config = replace(base, samsara_rate_per_s=200.0, motive_rate_per_s=200.0)
    with SandboxServer(config) as sandbox:
        port = free_port()
        opts = s3_options(seaweed_s3)
        env = {**os.environ,
               "FLEETLAKE_DATA_DIR": str(tmp_path / "data"),
               "FLEETLAKE_STORE_URL": f"s3://{BUCKET}/e2e-{uuid.uuid4().hex[:10]}",
               "FLEETLAKE_S3_ENDPOINT_URL": opts.endpoint_url, "FLEETLAKE_S3_REGION": opts.region or "us-east-1",
               "FLEETLAKE_S3_ACCESS_KEY_ID": opts.access_key_id, "FLEETLAKE_S3_SECRET_ACCESS_KEY": opts.secret_access_key,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(port), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_HISTORY_MONTHS": "4",
               "FLEETLAKE_REFRESH_CRON": "* * * * *", "FLEETLAKE_SHUTDOWN_GRACE_S": "60",
               "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        daemon = Daemon(env, tmp_path / "daemon.log")
        try:
            yield sandbox, daemon, env, f"http://127.0.0.1:{port}"
        finally:
            if daemon.proc and daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()


def _api(base: str) -> httpx.Client:
    return loopback.client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _status(api: httpx.Client, fleet: str) -> dict:
    r = api.get(f"/fleets/{fleet}/status")
    r.raise_for_status()
    return r.json()


def _done(api: httpx.Client, fleet: str, month: str | None = None) -> bool:
    s = _status(api, fleet)
    if s["status"] != "active" or not s["months"] or (month and month not in s["months"]):
        return False
    return all(state == "done" for m in s["months"].values() for state in m["features"].values())


def test_consent_backfill_sigterm_restart_features_and_scheduled_refresh(world, tmp_path: Path) -> None:
    sandbox, daemon, env, base = world
    # Slow answers keep the backfill running long enough to be interrupted.
    sandbox.world.faults["samsara"] = FaultPlan(seed=1, slow=1.0, slow_seconds=0.4)
    daemon.start()
    api = _api(base)

    # Consent through the real callback: the API hands out the URL, the sandbox "user" approves,
    # the browser follows the redirect to the daemon.
    for fleet, tsp in FLEETS.items():
        url = api.post(f"/connect/{tsp}", params={"fleet_id": fleet}).json()["consent_url"]
        redirect = loopback.get(url).headers["location"]
        assert redirect.startswith(f"{base}/oauth/{tsp}/callback?")
        r = loopback.get(redirect)
        assert r.status_code == 200 and fleet in r.text
    assert loopback.get(redirect).status_code == 400  # a code works once

    # SIGTERM in the middle of the Samsara backfill, then a restart.
    _wait("a first committed month", lambda: _status(api, "acme-freight")["months"], 120, 0.2)
    assert _status(api, "acme-freight")["status"] == "backfilling"
    t0 = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - t0 < 60
    sandbox.world.faults["samsara"] = FaultPlan()
    daemon.start()
    api = _api(base)
    for fleet in FLEETS:
        _wait(f"{fleet} backfilled with features", lambda f=fleet: _done(api, f))

    # Read-only commands work while the daemon holds the manifest.
    out = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "status"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    # The cron fires every minute here, so a fleet may be in a scheduled refresh by now.
    for fleet, tsp in FLEETS.items():
        assert re.search(rf"^{fleet} \({tsp}\): (active|refreshing)\b", out.stdout, re.M), out.stdout

    before = _status(api, "acme-freight")["months"]
    open_month = max(before)
    sandbox.world.clock.advance_months(1)
    new_month = f"{int(open_month[:4]) + (open_month[5:] == '12')}-{int(open_month[5:]) % 12 + 1:02d}"
    for fleet in FLEETS:  # the cron fires every minute in this test
        _wait(f"{fleet} refreshed", lambda f=fleet: _done(api, f, new_month), 180)
    metrics = loopback.get(f"{base}/metrics").text
    assert "fleetlake_pings_ingested_total" in metrics and 'fleetlake_tsp_requests_total{status="200",tsp="samsara"}' \
        in metrics
    assert daemon.stop() == 0
    log = (tmp_path / "daemon.log").read_text()
    assert TOKEN not in log and env["FLEETLAKE_TOKEN_KEY"] not in log and "Bearer" not in log

    with Manifest(Path(env["FLEETLAKE_DATA_DIR"]) / "manifest.duckdb", read_only=True) as m:
        runs = [r for r in m.runs() if r.status == "succeeded"]
        month_flows = {(f.name, f.version) for f in active_flows(None) if f.window == "month"}
        runs = [r for r in runs if (r.flow, r.version) in month_flows]  # the quote window has its own key
        flows = sorted({(r.flow, r.version) for r in runs})
        assert len(flows) >= 7
        for fleet in FLEETS:
            mine = [r for r in runs if r.fleet_id == fleet]
            # The new month ran exactly once per flow version; older complete months ran once.
            assert sorted((r.flow, r.version) for r in mine if r.month == new_month) == flows
            for month in before:
                n = sum(1 for r in mine if r.month == month)
                assert n == len(flows) if month < open_month else n >= len(flows), (fleet, month, n)

        # Nothing lost or duplicated across the SIGTERM: every complete month holds exactly the
        # pings the sandbox serves, once each.
        store = open_store(env["FLEETLAKE_STORE_URL"], s3_options(env["FLEETLAKE_S3_ENDPOINT_URL"]))
        sim = sandbox.world.sims["acme-freight"]
        for month in sorted(before)[:-1]:
            t = read_month(store, m, "acme-freight", month, tmp_path / "cache")
            lo, hi = month_bounds_ms(month)
            expected = sum(len(sim.pings(v, lo, hi)) for v in sim.vehicles)
            keys = pc.binary_join_element_wise(pc.cast(t["vehicle_id"], "string"),
                                               pc.cast(pc.cast(t["ts"], "int64"), "string"), ":")
            assert t.num_rows == expected == len(pc.unique(keys)), month
