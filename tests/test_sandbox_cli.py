"""`fleetlake sandbox` as a user runs it: a process that prints where it serves, then serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.support import loopback


def test_sandbox_command_prints_one_json_line_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--seed", "3",
                             "--now", "2026-02-10T00:00:00Z"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert set(info) == {"samsara", "motive"}
        for tsp in ("samsara", "motive"):
            assert set(info[tsp]) == {"base_url", "client_id", "client_secret"}
        base = info["samsara"]["base_url"].rsplit("/", 1)[0]
        clock = loopback.get(f"{base}/_sandbox/clock", timeout=10).json()
        assert clock["now"] == "2026-02-10T00:00:00Z"
        fleets = loopback.get(f"{base}/_sandbox/fleets", timeout=10).json()
        assert {f["tsp"] for f in fleets} == {"samsara", "motive"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)  # also closes the pipes
    assert proc.returncode == 0, err
