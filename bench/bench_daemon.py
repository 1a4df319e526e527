"""Daemon footprint: cold start to a healthy /healthz, installed size, image size.

Cold start is measured from spawning `fleetlake run` (fresh data dir, local store) to the first
200 from /healthz, median of --rounds, next to two floors measured in the same run: a bare
`python -c pass`, and importing the daemon's modules without starting anything.

    python bench/bench_daemon.py [--rounds 5] [--image localhost/fleetlake-check:latest]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def _cold_start() -> float:
    with tempfile.TemporaryDirectory() as d:
        port = _free_port()
        env = {**os.environ, "FLEETLAKE_DATA_DIR": d, "FLEETLAKE_HTTP_PORT": str(port), "FLEETLAKE_LOG_FORMAT": "json"}
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "run"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                if p.poll() is not None:
                    raise RuntimeError("fleetlake run exited")
                time.sleep(0.02)
        finally:
            p.terminate()
            p.wait(30)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--image", default="localhost/fleetlake-check:latest")
    args = ap.parse_args()
    bare = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(args.rounds))
    imports = statistics.median(_timed([sys.executable, "-c", "import ingest.runtime.daemon, ingest.surfaces.api, "
                                        "ingest.flows.registry as r; r.active_flows()"]) for _ in range(args.rounds))
    cold = statistics.median(_cold_start() for _ in range(args.rounds))
    print(f"cold start to healthy /healthz: {cold:.2f}s (median of {args.rounds}); floors in the same run: "
          f"bare python {bare:.2f}s, importing the daemon {imports:.2f}s")
    venv = Path(sys.prefix)
    print(f"installed virtualenv {venv}: {_du(venv) / 1e6:.0f} MB (with test extras if installed so)")
    if shutil.which("podman"):
        r = subprocess.run(["podman", "image", "inspect", args.image, "--format", "{{.Size}}"], capture_output=True,
                           text=True, env={**os.environ, "CONTAINERS_STORAGE_CONF": os.environ.get(
                               "CONTAINERS_STORAGE_CONF", "/tmp/container-check/conf/storage.conf")})
        print(f"image {args.image}: {int(r.stdout) / 1e6:.0f} MB" if r.returncode == 0 and r.stdout.strip()
              else f"image {args.image}: not built here (../shared/tools/container-check.sh builds it)")
    else:
        print("image: podman not installed; ../shared/tools/container-check.sh installs it and builds the image")


if __name__ == "__main__":
    main()
