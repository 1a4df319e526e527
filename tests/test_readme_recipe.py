"""The README's recipe for running the daemon on the demo's store works as written: after
`fleetlake demo`, its bash block (a sandbox at the demo's last clock, `fleetlake run`, a re-consent
of both fleets) leaves both fleets active again, with every month the demo landed unchanged but
the open one (its clock has moved on by the time the test's sandbox starts)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from partitions import Manifest
from tests.support import loopback
from tests.support.daemon import wait_for
from tests.support.ports import RAY_WORKER_PORTS, free_ports
from tests.support.readme import README

DEMO_ARGS = "--vehicles 2 --history-months 2 --ping-interval 60"
# The sandbox's world starts `history_months` before its clock: the recipe's is a month later.
SANDBOX_ARGS = "--vehicles 2 --history-months 3 --ping-interval 60"


def _recipe() -> str:
    text = README.read_text().split("To run the daemon and its console on the demo's store", 1)[1]
    return text.split("```bash\n", 1)[1].split("```", 1)[0]


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _months(manifest: Path) -> dict[tuple[str, str, str], tuple[int, str]]:
    with Manifest(manifest) as m:
        return {(p.dataset, p.fleet_id, p.month): (p.rows, p.fingerprint) for p in m.raw_partitions()}


@pytest.mark.slow
def test_the_daemon_on_the_demo_store_recipe_brings_both_fleets_back(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    demo = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "demo", *DEMO_ARGS.split()], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    last_clock = re.search(r"sandbox clock moved one month forward, to (\S+) (\d\d:\d\d) UTC", demo.stdout)
    assert last_clock, demo.stdout
    manifest = tmp_path / "fleetlake-data" / "manifest.duckdb"
    before = _months(manifest)

    sandbox_port, http_port = free_ports(2, avoid=RAY_WORKER_PORTS)
    script = _recipe()
    # The same recipe on this test's free ports, its virtualenv, and the small demo's world.
    assert "source .venv/bin/activate" in script and "--port 8900 --now 2027-01-02T03:15:00 --history-months 25" in script
    script = (script.replace("source .venv/bin/activate", f"export PATH={Path(sys.executable).parent}:$PATH")
              .replace("--port 8900 --now 2027-01-02T03:15:00 --history-months 25",
                       f"--port {sandbox_port} --now {last_clock[1]}T{last_clock[2]}:00 {SANDBOX_ARGS}")
              .replace("127.0.0.1:8900", f"127.0.0.1:{sandbox_port}"))
    script = f"export FLEETLAKE_HTTP_PORT={http_port}\n" + script.replace(
        "fleetlake run &", "fleetlake run > daemon.log 2>&1 &\n"
        f"until curl -sf http://127.0.0.1:{http_port}/healthz > /dev/null; do sleep 0.3; done")
    # Files, not pipes: the sandbox and the daemon it leaves in the background keep its output open.
    with open(tmp_path / "recipe.out", "w") as stdout, open(tmp_path / "recipe.err", "w") as stderr:
        recipe = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                                  start_new_session=True, stdout=stdout, stderr=stderr)
    try:
        recipe.wait(timeout=300)
        out, err = (tmp_path / "recipe.out").read_text(), (tmp_path / "recipe.err").read_text()
        assert recipe.returncode == 0, err[-3000:]
        assert out.count("is connected to fleetlake") == 2, out

        def fleets() -> dict[str, dict]:
            r = loopback.get(f"http://127.0.0.1:{http_port}/fleets", headers={"Authorization": "Bearer dev-token"})
            return {f["fleet_id"]: f for f in r.json()}

        wait_for("both fleets active again after their re-consent's backfill",
                 lambda: {f: v["status"] for f, v in fleets().items()}
                 == {"acme-freight": "active", "bluebird-logistics": "active"}, timeout=240)
    finally:
        os.killpg(recipe.pid, signal.SIGTERM)  # the sandbox and the daemon the recipe left running
        wait_for("the recipe's processes gone", lambda: _gone(recipe.pid), timeout=90)
    after = _months(manifest)
    assert set(before) <= set(after), "a month the demo landed is gone"
    newest = max(m for _, _, m in before)
    settled = {k: v for k, v in before.items() if k[2] < newest}
    assert settled and {k: after[k] for k in settled} == settled, "a month the demo landed changed"
