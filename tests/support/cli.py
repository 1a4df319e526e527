"""The `fleetlake` command as a user runs it: a process, its output and exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)
