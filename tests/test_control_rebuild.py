"""The store alone restores the control plane: after the data dir is deleted (manifest and all),
`fleetlake manifest rebuild` gives an identical `status --json`, a used consent link stays used,
and a daemon started on the rebuilt manifest pulls the fleet with no new consent; the readiness
thresholds it had announced stay announced, so the next refresh sends no alert a second time.
SeaweedFS over S3 (and a directory store), the sandbox over HTTP, a real webhook receiver, real
`fleetlake` processes."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from partitions import Manifest
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.cli import run_cli
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.seaweed import BUCKET, s3_options
from tests.support.webhook import webhook_receiver

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
            location = loopback.get(run_cli(env, "connect", tsp, "--fleet", fleet).stdout.strip()).headers["location"]
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
            replay = loopback.get(location)
            assert replay.status_code == 400 and "used already" in replay.json()["error"]
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
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


def _readiness(env: dict[str, str], fleet: str) -> dict:
    r = run_cli(env, "status", "--fleet", fleet, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ready = json.loads(r.stdout)[0]["readiness"]
    # The pull rate and ETA are measured from checkpoint times, which a rebuild does not keep.
    return {k: ready[k] for k in ("months_ready", "span", "months_to_pull", "thresholds")}


def test_a_rebuilt_manifest_sends_no_readiness_alert_twice(tmp_path: Path) -> None:
    fleet = "acme-freight"
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=2, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox, \
            webhook_receiver() as hook:
        data = tmp_path / "data"
        flows = tmp_path / "flows.toml"
        flows.write_text('active = ["data_quality@1", "distance@2"]\n')
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_STORE_URL": (tmp_path / "store").as_uri(), "FLEETLAKE_FLOWS_FILE": str(flows),
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_HISTORY_MONTHS": "2",
               "FLEETLAKE_READINESS_MONTHS": "[1, 2]", "FLEETLAKE_ALERT_WEBHOOK_URL": hook.url,
               "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        location = loopback.get(run_cli(env, "connect", "samsara", "--fleet", fleet).stdout.strip()).headers["location"]
        q = httpx.URL(location).params
        assert run_cli(env, "connect", "samsara", "--fleet", fleet, f"--code={q['code']}",
                    f"--state={q['state']}").returncode == 0
        r = run_cli(env, "backfill", fleet)
        assert r.returncode == 0, r.stdout + r.stderr
        assert [a["months"] for a in hook.events("fleet.ready_for_quote")] == [1, 2]
        before = _readiness(env, fleet)
        assert [t["delivered"] for t in before["thresholds"]] == [True, True]

        shutil.rmtree(data)  # the disk is gone: manifest, keyring, spool, everything local
        r = run_cli(env, "manifest", "rebuild")
        assert r.returncode == 0, r.stdout + r.stderr
        report = json.loads(r.stdout)
        assert (report["readiness_fired"], report["pulled_months"], report["data_keys"]) == (2, 2, 1), report
        assert _readiness(env, fleet) == before  # same months pulled, same thresholds fired at the same times

        # New pings in the open month: the refresh computes its features and checks readiness again.
        sandbox.world.clock.advance(6 * 3600)
        with Manifest(data / "manifest.duckdb", read_only=True) as m:
            runs = len(m.runs())
        r = run_cli(env, "refresh", "--fleet", fleet)
        assert r.returncode == 0, r.stdout + r.stderr
        with Manifest(data / "manifest.duckdb", read_only=True) as m:
            assert len(m.runs()) > runs, "the refresh computed nothing, so it never asked about readiness"
        assert [a["months"] for a in hook.events("fleet.ready_for_quote")] == [1, 2]  # nothing sent twice
