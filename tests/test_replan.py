"""Nothing waits for the cron: a daemon started after a kill between the pulls and the features
computes every pending window on its own, against a real `fleetlake run` and the sandbox."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

from cryptography.fernet import Fernet

from ingest.runtime.app import open_app
from ingest.wiring.settings import load_settings
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.consent import consent
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port

TOKEN = "replan-" + uuid.uuid4().hex


def test_pending_windows_after_a_kill_are_computed_without_the_cron(tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=2, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "2",
               "FLEETLAKE_REFRESH_CRON": "0 3 1 1 *", "FLEETLAKE_REPLAN_S": "5", "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        # The pulls commit, then the process dies before its feature pass: the fleet is active,
        # its data landed, every feature window pending.
        settings = load_settings(data_dir=tmp_path / "data", sandbox_url=sandbox.base_url, history_months=2,
                                 token_key=env["FLEETLAKE_TOKEN_KEY"])
        with open_app(settings) as app:
            consent(app.onboarding, "samsara", "acme-freight")
            # The pull alone, no feature work after it: as if the process died after each commit
            # and before the feature work its months queued ran.
            assert app.pulls.pull("acme-freight").result == "active"
            grid = app.reads.status("acme-freight")
            pending = sum(s == "pending" for m in grid.months.values() for s in m.features.values())
            assert grid.fleet.status == "active" and pending >= 14

        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
                def all_done() -> bool:
                    months = api.get("/fleets/acme-freight/status").json()["months"]
                    return bool(months) and all(s == "done" for m in months.values() for s in m["features"].values())
                wait_for("every pending window computed", all_done, 180, 1.0)
                # by the fleet's feature work (its record lands just after its last window)
                wait_for("the feature work's record",
                         lambda: "features:acme-freight" in api.get("/work").json()["last"], 30, 0.2)
                # Nothing pulled again: the replan queued feature work only.
                assert not any(k.startswith(("backfill:", "refresh:")) for k in api.get("/work").json()["last"])
        finally:
            d.kill()
