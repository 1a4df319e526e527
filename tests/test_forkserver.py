"""Worker processes forked for a `python -m` main do not import the main module's imports again,
and do not outlive a daemon that is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_a_forked_worker_finds_the_main_modules_imports_already_loaded(tmp_path: Path) -> None:
    log = tmp_path / "imports.log"
    r = subprocess.run([sys.executable, "-m", "tests.support.forkserver_main", str(log)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    workers = [int(p) for p in r.stdout.strip().strip("[]").split(",")]
    assert len(workers) >= 1
    importers = [int(line) for line in log.read_text().split()]
    # The main process and the forkserver import it; none of the workers does.
    assert len(importers) == 2 and not set(importers) & set(workers), (importers, workers)


def test_pool_workers_exit_when_the_daemon_that_made_them_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-m", "tests.support.pool_owner"], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert owner.stdout is not None
        workers = [int(p) for p in owner.stdout.readline().split()]
        assert workers and all(Path(f"/proc/{p}").exists() for p in workers)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        if owner.stdout is not None:
            owner.stdout.close()
    wait_for("the pool's workers gone", lambda: not any(Path(f"/proc/{p}").exists() for p in workers), timeout=30)
