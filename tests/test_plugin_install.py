"""`pip install ./examples/idle_share`, activate `idle_share@1`, and fleetlake computes it for every
fleet-month, with no change to fleetlake (issue 24, "done when").

In a fresh virtualenv: fleetlake installed from this tree (editable, its dependencies reused from
the test's environment through a .pth file, so nothing is downloaded but the build backend), then
the example plug-in from a copy of examples/idle_share (a build writes into its source tree). A
script in that virtualenv lands two fleets' months, reads the flows file named by
FLEETLAKE_FLOWS_FILE as the daemon does (config/flows.toml's list plus idle_share@1) and runs the
feature engine the daemon runs; `fleetlake sql` there reads the plug-in's table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''
import json, os, sys
from datetime import datetime, timezone
from pathlib import Path

import idle_share
from ingest.engine.runs import run_features
from ingest.flows.registry import active_flows
from partitions import Manifest, MonthWriter
from partitions.store import LocalStore
from sandbox.groundtruth import month_table
from sandbox.simulator import FleetSimulator, FleetSpec

def main() -> None:  # the pool's workers import this file: nothing may run at import
    assert "site-packages" in idle_share.__file__, idle_share.__file__  # the installed package, not the source
    data = Path(os.environ["FLEETLAKE_DATA_DIR"])
    store = LocalStore(data / "store")
    flows = active_flows(Path(os.environ["FLEETLAKE_FLOWS_FILE"]))
    with Manifest(data / "manifest.duckdb") as m:
        for i, fleet in enumerate(("fleet-a", "fleet-b")):
            sim = FleetSimulator(FleetSpec(fleet, 11 + i, 2, datetime(2025, 1, 1, tzinfo=timezone.utc), ping_interval_s=30))
            with MonthWriter(store, m, fleet, work_dir=data / "work", now_ms=1_900_000_000_000) as w:
                for month in ("2025-02", "2025-03"):
                    w.add(month_table(sim, month))
                w.commit()
        rep = run_features(m, flows, store.url, None, data / "work" / "cache", 1_900_000_000_000, 1)
        print(json.dumps({"flows": [f.key for f in flows], "modules": {f.key: f.module for f in flows},
                          "runs": [[r.flow, r.version, r.fleet_id, r.month, r.status.value, r.error] for r in rep.results]}))


if __name__ == "__main__":
    main()
'''


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout


def test_an_installed_plugin_activated_in_the_flows_file_is_computed_for_every_fleet_month(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (purelib / "_reuse_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps"]
    _run([*pip, "-e", str(ROOT)])
    plugin = tmp_path / "idle_share"
    shutil.copytree(ROOT / "examples" / "idle_share", plugin, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    _run([*pip, str(plugin)])
    # the plug-in's own tests, against the installed package, as its author runs them
    assert "2 passed" in _run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(plugin),
                               str(plugin / "tests")])

    active = [line.strip().strip('",') for line in (ROOT / "config" / "flows.toml").read_text().splitlines()
              if line.strip().startswith('"')]
    flows_file = tmp_path / "flows.toml"
    flows_file.write_text("active = [" + ", ".join(f'"{k}"' for k in [*active, "idle_share@1"]) + "]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    env.update(FLEETLAKE_DATA_DIR=str(tmp_path / "data"), FLEETLAKE_FLOWS_FILE=str(flows_file))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out = json.loads(_run([str(py), str(script)], env).strip().splitlines()[-1])

    assert "idle_share@1" in out["flows"] and out["modules"]["idle_share@1"] == "idle_share"
    runs = out["runs"]
    assert all(r[4] == "succeeded" for r in runs), [r for r in runs if r[4] != "succeeded"]
    windows = {(r[2], r[3]) for r in runs if r[0] == "idle_share"}
    assert windows == {(f, m) for f in ("fleet-a", "fleet-b") for m in ("2025-02", "2025-03")}
    # the built-ins ran beside it, every fleet-month too
    assert {(r[2], r[3]) for r in runs if r[0] == "distance"} == windows

    sql = _run([str(venv / "bin" / "fleetlake"), "sql", "-c",
                "SELECT fleet_id, month, count(*) AS n, count(idle_share) AS measured FROM features_idle_share_v1 "
                "WHERE vehicle_id IS NULL GROUP BY ALL ORDER BY ALL"], env)
    for fleet in ("fleet-a", "fleet-b"):
        for month in ("2025-02", "2025-03"):
            assert any(fleet in line and month in line for line in sql.splitlines()), sql


@pytest.fixture(autouse=True)
def _no_stray_build_files() -> Iterator[None]:
    yield
    assert not (ROOT / "examples" / "idle_share" / "build").exists()
