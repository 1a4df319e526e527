"""A real two-node Ray cluster for tests: a head and a worker node, each its own `ray start --block` process.

Both nodes run this venv's Python, so their workers import the same fleetlake (and, through
PYTHONPATH, the tests' own flows). They get the S3 credentials in their environment, as a
cluster's nodes would from their pod or VM; the test process does not hand them any.

Each node is stopped by the id of the `ray start` process we started (SIGTERM makes it stop
its raylet and workers), not with `ray stop`, which would stop every Ray on the machine.
Ports are free ones outside 10002-19999, Ray's default worker range, which other clusters on
the machine may be using; workers take ports the OS picks.

`ray start` gives its raylet a fixed 30 s (not configurable in Ray 2.60) to register with the
GCS, and exits when that passes. On a CI machine whose two cores also run three other test
files, a node's agents can take longer than that to start, so a node that exits while starting
is started again, up to NODE_STARTS times; every attempt's log is kept for the error.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.support import ports

ROOT = Path(__file__).resolve().parents[2]
NODE_STARTS = 3


class NodeExited(RuntimeError):
    """A `ray start` process ended while its node was joining the cluster."""


def free_port() -> int:
    return ports.free_port(avoid=ports.RAY_WORKER_PORTS)


@dataclass
class RayCluster:
    address: str  # the head's GCS, which nodes join
    client_address: str  # Ray Client (ray://), where a driver off the cluster (the daemon) connects
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[BinaryIO] = field(default_factory=list)

    def start_node(self, env: dict[str, str], cpus: int, *args: str) -> None:
        log = open(self.workdir / f"node{len(self.logs)}.log", "wb")
        self.logs.append(log)
        ray = Path(sys.executable).parent / "ray"
        self.procs.append(subprocess.Popen(
            [str(ray), "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--disable-usage-stats",
             "--min-worker-port=0", "--max-worker-port=0",
             f"--temp-dir={self.workdir / 'ray'}", f"--node-manager-port={free_port()}",
             f"--object-manager-port={free_port()}", f"--metrics-export-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
             f"--runtime-env-agent-port={free_port()}", "--object-store-memory=100000000", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))

    def stop(self) -> None:
        for p in reversed(self.procs):  # the worker node first, then the head
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for log in self.logs:
            log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def drop_last(self) -> None:
        """Forget the node started last (its process has exited); its log stays for log_tail."""
        proc = self.procs.pop()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)

    def log_tail(self) -> str:
        return "\n".join(f"--- node log {i}:\n" + (self.workdir / f"node{i}.log").read_text(errors="replace")[-2000:]
                         for i in range(len(self.logs)))


def start_cluster(node_env: dict[str, str], cpus: int = 1, timeout_s: float = 120.0) -> RayCluster:
    """A head and one worker node; returns once both have joined (the caller stops it, also on failure)."""
    # A short path: Ray's unix sockets live under the temp dir and must stay under 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="flray-", dir="/tmp"))
    port, client_port = free_port(), free_port()
    cluster = RayCluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", workdir)
    env = {**os.environ, **node_env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    def head() -> None:
        cluster.start_node(env, cpus, "--head", f"--port={port}", f"--ray-client-server-port={client_port}",
                           "--include-dashboard=false")
        _wait_port(cluster, port, timeout_s)
        _wait_nodes(cluster, 1, timeout_s)

    def worker() -> None:
        cluster.start_node(env, cpus, f"--address={cluster.address}")
        _wait_nodes(cluster, 2, timeout_s)

    try:
        _start_node(cluster, head)
        _start_node(cluster, worker)
    except Exception:
        cluster.stop()
        raise
    return cluster


def _start_node(cluster: RayCluster, start_and_wait: Callable[[], None]) -> None:
    for attempt in range(1, NODE_STARTS + 1):
        try:
            start_and_wait()
            return
        except NodeExited:
            if attempt == NODE_STARTS:
                raise
            cluster.drop_last()


def _wait_port(cluster: RayCluster, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.procs):
            raise NodeExited(f"ray start exited:\n{cluster.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the Ray head did not listen on {port}:\n{cluster.log_tail()}")


def _wait_nodes(cluster: RayCluster, n: int, timeout_s: float) -> None:
    """Until the cluster's status lists n live nodes (asked by `ray status`, a separate process)."""
    deadline = time.monotonic() + timeout_s
    ray = Path(sys.executable).parent / "ray"
    out = ""
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.procs):
            raise NodeExited(f"ray start exited:\n{cluster.log_tail()}")
        r = subprocess.run([str(ray), "status", f"--address={cluster.address}"], capture_output=True, text=True,
                           timeout=60)
        out = r.stdout
        if r.returncode == 0 and _live_nodes(out) >= n:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {n} nodes:\n{out}\n{cluster.log_tail()}")


def _live_nodes(status: str) -> int:
    """Nodes `ray status` lists as active or idle; a node that died starting is listed after them."""
    return status.split("Pending:", 1)[0].count("node_")
