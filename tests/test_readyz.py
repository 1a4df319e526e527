"""/readyz tells the truth about the daemon's dependencies, in bounded time, without internals.

- A store that accepts connections and never answers (a real TCP server as the S3 endpoint):
  /readyz answers 503 naming the store and the probe timeout (FLEETLAKE_READYZ_TIMEOUT_S, set
  here to 0.5 s), however often it is asked, and never with the endpoint, bucket or keys.
- A full local disk (a real tmpfs of 1 MB as FLEETLAKE_DATA_DIR, so the pull's spool fills it):
  the fleet is marked failed with an error that names the directory by its setting, /work and
  /fleets show no internal path, /readyz answers 503 naming the disk, and nothing is
  half-committed (every window the manifest knows is exactly its Delta table's live files).

Real `fleetlake run` processes, the sandbox TSP over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from cryptography.fernet import Fernet

from partitions import Manifest, layout, open_store
from partitions.delta import lake_for
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.silent_server import silent_server

TOKEN = "readyz-" + uuid.uuid4().hex


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_API_TOKEN": TOKEN,
           "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_HTTP_PORT": str(free_port()),
           "FLEETLAKE_LOG_FORMAT": "json", **{f"FLEETLAKE_{k.upper()}": v for k, v in settings.items()}}
    env.pop("FLEETLAKE_CONFIG_FILE", None)
    return env


def test_readyz_names_a_hung_store_and_its_timeout(tmp_path: Path) -> None:
    secret = "s3-secret-" + uuid.uuid4().hex
    with silent_server() as s3:
        env = _env(tmp_path, store_url="s3://lake-bucket/prefix", s3_endpoint_url=s3.url,
                   s3_access_key_id="AKIAREADYZTEST", s3_secret_access_key=secret, readyz_timeout_s="0.5")
        # A manifest that exists: starting over a store that cannot be read is refused when the
        # manifest is missing (that start would have to ask the store whether it holds a lake).
        Manifest(tmp_path / "data" / "manifest.duckdb").close()
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()  # /healthz answers: the HTTP server runs while the daemon's start waits on the store
        try:
            answers = [loopback.get(f"{d.base}/readyz", timeout=30) for _ in range(4)]
            for r in answers:
                problems = r.json()["problems"]
                assert r.status_code == 503 and not r.json()["ready"], r.text
                assert "store: no answer within 0.5 s (s3 endpoint; FLEETLAKE_READYZ_TIMEOUT_S)" in problems, problems
                assert not any(p.startswith("manifest") for p in problems), problems
                for internal in (str(s3.port), "lake-bucket", "AKIAREADYZTEST", secret):
                    assert internal not in r.text, (internal, r.text)
            # Asked four times, the store was asked once by /readyz: a hung probe is waited on
            # again, not started again (the other connection is the daemon's own start-up).
            assert s3.accepted <= 2, s3.accepted
        finally:
            d.kill()


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    # Needs root (this suite's machines run as root): a disk that really fills, not a mock of one.
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_fails_the_fleet_and_readyz_naming_the_directory(tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=3, ping_interval_s=15, history_months=2, now=NOW)
    store_dir = tmp_path / "store"
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0)) as sandbox, \
            _tmpfs(tmp_path / "data", "1m"):
        # The data dir is the 1 MB tmpfs and holds only the work dir (spool, merges); the store and
        # the manifest live elsewhere, so it is the spool that meets the full disk.
        env = _env(tmp_path, sandbox_url=sandbox.base_url, history_months="2", store_url=store_dir.as_uri(),
                   manifest_path=str(tmp_path / "manifest.duckdb"), min_free_disk_mb="0")
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
                assert loopback.get(f"{d.base}/readyz").status_code == 200  # an empty disk is ready
                url = api.post("/connect/samsara", params={"fleet_id": "acme-freight"}).json()["consent_url"]
                assert loopback.get(loopback.get(url).headers["location"], timeout=60).status_code == 200

                def failed() -> dict | None:
                    [fleet] = api.get("/fleets").json()
                    return fleet if fleet["status"] == "failed" else None
                fleet = wait_for("the fleet failed", failed, 240, 0.5)
                assert "local disk full under FLEETLAKE_DATA_DIR (work/spool)" in fleet["error"], fleet
                work = wait_for("the pull's work record",
                                lambda: api.get("/work").json()["last"].get("backfill:acme-freight"), 60, 0.3)
                assert work.startswith("failed") and "local disk full under FLEETLAKE_DATA_DIR" in work, work
                answers = api.get("/work").text + api.get("/fleets").text + api.get("/fleets/acme-freight/status").text
                for internal in (str(tmp_path), "fleetlake-writer-", "/tmp"):
                    assert internal not in answers, (internal, answers)

                r = loopback.get(f"{d.base}/readyz")
                problems = r.json()["problems"]
                assert r.status_code == 503 and any(p.startswith("disk: local disk full under FLEETLAKE_DATA_DIR "
                                                                 "(work/spool)") for p in problems), problems
                assert str(tmp_path) not in r.text
            assert d.stop() == 0
        finally:
            d.kill()
    # Nothing half-committed: every window the manifest records is exactly the live files of its
    # Delta table, each in the store; whatever did not commit is in neither.
    store = open_store(store_dir.as_uri())
    with Manifest(tmp_path / "manifest.duckdb", read_only=True) as m:
        recorded = {(p.dataset, p.month): sorted(p.files) for p in m.raw_partitions("acme-freight")}
    lake = lake_for(store)
    live = {}
    for table in lake.tables():
        kind, dataset, _ = layout.parse_table(table)
        if kind == "raw":
            live.update({(dataset, month): sorted(f.key for f in files)
                         for (fleet, month), files in lake.live_files(table).items() if fleet == "acme-freight"})
    assert recorded == live and all(store.exists(k) for keys in live.values() for k in keys)
