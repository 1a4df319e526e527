"""The CLI without a daemon: connect, backfill, status and features on the manifest directly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography.fernet import Fernet

from ingest.flows.registry import active_flows
from sandbox.server import SandboxServer
from tests.support import loopback
from tests.support.cli import run_cli


def test_connect_backfill_status_and_features(sandbox: SandboxServer, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
           "FLEETLAKE_TOKEN_KEY": key, "FLEETLAKE_HISTORY_MONTHS": "2"}
    env.pop("FLEETLAKE_CONFIG_FILE", None)
    r = run_cli(env, "connect", "samsara", "--fleet", "acme-freight")
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    location = loopback.get(url).headers["location"]
    assert location.startswith("http://127.0.0.1:8080/oauth/samsara/callback?")
    q = parse_qs(urlparse(location).query)
    # A forged state is refused, naming the problem, without a traceback.
    # `--code=...`: a code may start with "-", which argparse would otherwise take for an option.
    bad = run_cli(env, "connect", "samsara", "--fleet", "acme-freight", f"--code={q['code'][0]}", "--state=forged.x")
    assert bad.returncode == 2 and "state" in bad.stderr and "Traceback" not in bad.stderr
    ok = run_cli(env, "connect", "samsara", "--fleet", "acme-freight", f"--code={q['code'][0]}", f"--state={q['state'][0]}")
    assert ok.returncode == 0 and "acme-freight connected" in ok.stdout, ok.stderr
    # A connected fleet gets a new consent link only when a re-link is asked for.
    again = run_cli(env, "connect", "samsara", "--fleet", "acme-freight")
    assert again.returncode == 2 and "--relink" in again.stderr and "Traceback" not in again.stderr
    relink = run_cli(env, "connect", "samsara", "--fleet", "acme-freight", "--relink")
    assert relink.returncode == 0 and relink.stdout.startswith("http"), relink.stderr

    r = run_cli(env, "backfill", "acme-freight")
    assert r.returncode == 0, r.stdout + r.stderr
    # every active month flow x 3 months, the quote window and the book
    n = sum(1 for f in active_flows() if f.window == "month")
    assert "acme-freight: active" in r.stdout and f"features: {3 * n + 2} windows, 0 failed" in r.stdout

    grid = json.loads(run_cli(env, "status", "--json").stdout)
    [fleet] = grid
    assert fleet["status"] == "active" and len(fleet["months"]) == 3
    assert all(state == "done" for m in fleet["months"].values() for state in m["features"].values())
    text = run_cli(env, "status").stdout
    assert "acme-freight (samsara): active" in text and "#" in text
    # one fleet's status ends with its quote: the window, then each figure with its months covered
    one = run_cli(env, "status", "--fleet", "acme-freight").stdout
    assert "  quote q12:" in one and "(incomplete window)" in one, one  # 2 complete months of 12
    assert "Miles" in one and "Night driving" in one and "/12 months" in one, one

    feats = json.loads(run_cli(env, "features", "acme-freight", "--json").stdout)
    months = feats["months"]
    assert len(months) == 3
    some = next(iter(months.values()))
    assert some["radius@2"][0]["vehicle_id"] is None and "radius_class" in some["radius@2"][0]
    # driver figures: one row per driver and the unassigned row (driver_id null), ids only, no names
    drivers = [r for m in months.values() for r in m.get("drivers@1", [])]
    assert any(r["driver_id"] for r in drivers) and all("name" not in r for r in drivers)
    text = run_cli(env, "features", "acme-freight").stdout
    assert "drivers@1" in text and "driver_id=900000" in text
    assert run_cli(env, "features", "nobody").returncode != 0
    # A second backfill finds nothing new to compute.
    again = run_cli(env, "backfill", "acme-freight")
    assert "features: 0 windows" in again.stdout
    assert key not in r.stdout + r.stderr + again.stdout + again.stderr
