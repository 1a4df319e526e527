"""A real `fleetlake run` process for tests: started with an environment, stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from tests.support import loopback


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class DaemonProcess:
    def __init__(self, env: dict[str, str], log: Path, umask: int = -1) -> None:
        """`umask`: the child's (default: this process's, which opening a Manifest makes 077)."""
        self.env, self.log, self.umask = env, log, umask
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{env['FLEETLAKE_HTTP_PORT']}"

    def start(self, wait: bool = True) -> None:
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "run"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, umask=self.umask)
        if wait:
            wait_for("healthz", self._healthy, 60)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        return loopback.get(f"{self.base}/healthz").status_code == 200

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
