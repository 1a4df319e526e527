"""Worker processes forked for a `python -m` main do not import the main module's imports again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
