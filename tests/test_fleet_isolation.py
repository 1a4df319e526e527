"""One hostile TSP server per fleet fails that fleet alone, in a real `fleetlake run` over real HTTP.

Six fleets pull at once: two honest, four whose (sandbox) server answers endless empty pages, a
trickle, a gzip bomb, or a 200 MB page. Each hostile one ends `failed` with an error that names its
limit; the honest ones land their history; the daemon's peak memory stays far below what one bomb
would take uncapped (1 GB inflated); and SIGTERM in the middle of a slow refresh exits within the
grace period keeping every month committed.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from ingest.runtime.app import open_app
from ingest.wiring.settings import load_settings
from partitions import Manifest
from sandbox.faults import FaultPlan
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from sandbox.simulator import FleetSpec
from sandbox.world import SandboxFleet, default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port

pytestmark = pytest.mark.slow
TOKEN = "iso-" + uuid.uuid4().hex
CAP_MB = 16
HOSTILE = {  # fleet -> (quirk, what its error must say)
    "endless-pages": ("endless_pages", "h of one vehicle's GPS: the API keeps saying there is more"),
    "trickler": ("trickle", "no complete answer within 20 s"),
    "gzip-bomber": ("gzip_bomb", f"exceeds {CAP_MB << 20:,} bytes after decompression"),
    "huge-pager": ("huge_page", f"exceeds {CAP_MB << 20:,} bytes"),
}
HONEST = {"honest-samsara": "samsara", "honest-motive": "motive"}


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_each_hostile_server_fails_its_fleet_alone_and_sigterm_keeps_the_commits(tmp_path: Path) -> None:
    base = default_config(seed=21, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    start: datetime = base.fleets[0].spec.history_start
    fleets = [SandboxFleet(FleetSpec(fid, i, 2, start, 60), tsp, fid) for i, (fid, tsp) in enumerate(HONEST.items())]
    fleets += [SandboxFleet(FleetSpec(fid, 10 + i, 2, start, 60), "samsara", fid, Quirks(**{quirk: True}))
               for i, (fid, (quirk, _)) in enumerate(HOSTILE.items())]
    config = replace(base, fleets=tuple(fleets), samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)
    with SandboxServer(config) as sandbox:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "1",
               "FLEETLAKE_REFRESH_CRON": "0 3 1 1 *",
               "FLEETLAKE_MAX_CONCURRENT_FLEETS": "6", "FLEETLAKE_REQUEST_DEADLINE_S": "20",
               "FLEETLAKE_MAX_RESPONSE_MB": str(CAP_MB), "FLEETLAKE_MIN_PING_INTERVAL_S": "60",
               "FLEETLAKE_SHUTDOWN_GRACE_S": "30", "FLEETLAKE_RETRY_FAILED_S": "3600",
               "FLEETLAKE_LOG_FORMAT": "json"}
        # The deadline leaves a 16 MB page time to arrive on a loaded machine (else the deadline, not
        # the cap, would stop the huge page); a trickled page needs hours.
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        settings = load_settings(data_dir=tmp_path / "data", sandbox_url=sandbox.base_url, history_months=1,
                                 token_key=env["FLEETLAKE_TOKEN_KEY"])
        with open_app(settings) as app:
            for f in fleets:
                url = app.onboarding.consent_url(f.tsp, f.spec.fleet_id) + f"&fleet={f.spec.fleet_id}"
                q = httpx.URL(loopback.get(url).headers["location"]).params
                assert app.onboarding.complete_consent(f.tsp, q["code"], q["state"]) == f.spec.fleet_id

        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            assert d.proc is not None
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
                seen: list[dict] = [{}]

                def settled() -> dict[str, dict] | None:
                    views = seen[0] = {v["fleet_id"]: v for v in api.get("/fleets").json()}
                    ok = all(views[f]["status"] == "active" for f in HONEST) and all(
                        views[f]["status"] == "failed" for f in HOSTILE)
                    return views if ok else None
                try:
                    views = wait_for("honest fleets active, hostile ones failed", settled, 240, 0.5)
                except AssertionError:
                    raise AssertionError(f"fleets: {seen[0]}; work: {api.get('/work').json()}") from None
                for fid, (_, message) in HOSTILE.items():
                    assert message in (views[fid]["error"] or ""), (fid, views[fid]["error"])
                for fid in HONEST:
                    assert views[fid]["error"] is None
                    assert api.get(f"/fleets/{fid}/status").json()["months"], fid
                peak = _peak_rss_mb(d.proc.pid)
                print(f"daemon peak RSS {peak:.0f} MB")
                # A 1 GB bomb read whole would put the peak past 1 GB; capped, the daemon keeps its
                # base (pyarrow, DuckDB, six clients) plus a few caps.
                assert peak < 900, f"daemon peak RSS {peak:.0f} MB"

                # SIGTERM while every honest fleet is mid-refresh behind a slow server.
                sandbox.world.faults["samsara"] = FaultPlan(seed=2, slow=1.0, slow_seconds=0.5)
                sandbox.world.faults["motive"] = FaultPlan(seed=2, slow=1.0, slow_seconds=0.5)
                sandbox.world.clock.advance(10 * 86400)
                before = {fid: api.get(f"/fleets/{fid}/status").json()["months"] for fid in HONEST}
                assert api.post("/refresh").status_code == 202
                wait_for("refreshes running", lambda: any(k.startswith("refresh:honest")
                                                          for k in api.get("/work").json()["running_all"]), 60, 0.2)
            t0 = time.monotonic()
            assert d.stop(timeout=60) == 0
            took = time.monotonic() - t0
            assert took < 30, f"exit took {took:.1f} s, grace 30 s"
        finally:
            d.kill()
        with Manifest(tmp_path / "data" / "manifest.duckdb", read_only=True) as m:
            for fid in HONEST:
                kept = {p.month: p.rows for p in m.raw_partitions(fid, "pings")}
                for month, row in before[fid].items():
                    assert kept.get(month, 0) >= row["raw"].get("pings", 0), (fid, month)
