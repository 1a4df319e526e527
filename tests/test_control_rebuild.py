"""The store alone restores the control plane: after the data dir is deleted (manifest and all),
`fleetlake manifest rebuild` gives an identical `status --json`, a used consent link stays used,
and a daemon started on the rebuilt manifest pulls the fleet with no new consent. SeaweedFS over
S3, the sandbox over HTTP, real `fleetlake` processes."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support.cli import run_cli
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.seaweed import BUCKET, s3_options

TOKEN = "rebuild-" + uuid.uuid4().hex


def test_an_empty_disk_is_restored_from_the_store_and_the_daemon_resumes(seaweed_s3: str, tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    opts = s3_options(seaweed_s3)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        data = tmp_path / "data"
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_STORE_URL": f"s3://{BUCKET}/ctl-{uuid.uuid4().hex[:10]}",
               "FLEETLAKE_S3_ENDPOINT_URL": str(opts.endpoint_url), "FLEETLAKE_S3_REGION": opts.region or "us-east-1",
               "FLEETLAKE_S3_ACCESS_KEY_ID": str(opts.access_key_id),
               "FLEETLAKE_S3_SECRET_ACCESS_KEY": str(opts.secret_access_key),
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "1",
               "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        for fleet, tsp in (("acme-freight", "samsara"), ("bluebird-logistics", "motive")):
            location = httpx.get(run_cli(env, "connect", tsp, "--fleet", fleet).stdout.strip()).headers["location"]
            q = httpx.URL(location).params
            r = run_cli(env, "connect", tsp, "--fleet", fleet, f"--code={q['code']}", f"--state={q['state']}")
            assert r.returncode == 0, r.stderr
        r = run_cli(env, "refresh")
        assert r.returncode == 0, r.stdout + r.stderr
        before = run_cli(env, "status", "--json").stdout
        assert len(json.loads(before)) == 2

        shutil.rmtree(data)  # the disk is gone: manifest, spool, everything local
        r = run_cli(env, "manifest", "rebuild")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["control"] == {"fleets": 2, "credentials": 2, "consents": 2}
        assert run_cli(env, "status", "--json").stdout == before

        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            # The consent link used before the loss is still refused.
            replay = httpx.get(location)
            assert replay.status_code == 400 and "used already" in replay.json()["error"]
            with httpx.Client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
                assert api.post("/refresh").status_code == 202

                fleets = [f["fleet_id"] for f in api.get("/fleets").json()]
                assert len(fleets) == 2

                def refreshed() -> list[str] | None:
                    # A refresh of every fleet fans out to one work item per fleet.
                    last = api.get("/work").json()["last"]
                    got = [last.get(f"refresh:{f}") for f in fleets]
                    return None if None in got else got  # type: ignore[return-value]
                outcomes = wait_for("a refresh of each fleet", refreshed, 180, 1.0)
                assert all(o.startswith("ok") and "fleet active" in o for o in outcomes), outcomes
                assert {f["status"] for f in api.get("/fleets").json()} == {"active"}
        finally:
            d.kill()
