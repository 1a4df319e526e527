"""Least exposure, against a real `fleetlake run` over HTTP: metrics behind their own token, errors
without store URLs or paths, owner-only files."""

from __future__ import annotations

import os
import stat
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from common.states import FleetStatus, RunStatus
from partitions import Manifest
from partitions.manifest import FlowRun
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port

API, METRICS = "api-" + uuid.uuid4().hex, "metrics-" + uuid.uuid4().hex


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DaemonProcess, Path]]:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    now = datetime.now(timezone.utc)
    with Manifest(data / "manifest.duckdb") as m:
        m.upsert_fleet("acme-freight", "samsara", FleetStatus.ACTIVE)
        # A run of the active radius version whose output is gone from the store: reading it fails inside fleetlake.
        m.record_run(FlowRun("r1", "radius", 2, "c", "acme-freight", "2026-01", "i", RunStatus.SUCCEEDED,
                             ("features/radius/v2/fleet=acme-freight/month=2026-01/part-gone.parquet",), None, None,
                             now, now))
    os.chmod(data / "manifest.duckdb", 0o644)  # as earlier releases left it
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data), "FLEETLAKE_API_TOKEN": API,
           "FLEETLAKE_METRICS_TOKEN": METRICS, "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_LOG_FORMAT": "json"}
    for k in ("FLEETLAKE_CONFIG_FILE", "FLEETLAKE_TOKEN_KEY"):
        env.pop(k, None)
    d = DaemonProcess(env, tmp_path / "daemon.log", umask=0o022)  # a usual umask: group and others may read
    d.start()
    try:
        yield d, data
    finally:
        d.kill()


def test_metrics_need_their_own_token(daemon) -> None:
    d, _ = daemon
    for headers in ({}, {"Authorization": f"Bearer {API}"}, {"Authorization": METRICS}):
        r = loopback.get(f"{d.base}/metrics", headers=headers)
        assert r.status_code == 401 and "acme-freight" not in r.text and r.headers["www-authenticate"] == "Bearer"
    r = loopback.get(f"{d.base}/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert r.status_code == 200 and "fleetlake_api_requests" in r.text


def test_errors_name_no_store_url_or_path(daemon) -> None:
    d, data = daemon
    r = loopback.get(f"{d.base}/fleets/acme-freight/features", headers={"Authorization": f"Bearer {API}"})
    assert r.status_code == 503 and "object store" in r.json()["error"]
    assert str(data) not in r.text and "file://" not in r.text and "part-gone" not in r.text
    assert "part-gone" in d.log.read_text()  # the operator still finds the details in the log


def test_local_state_is_owner_only(daemon) -> None:
    d, data = daemon
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # DuckDB makes the WAL itself at the first write after a checkpoint (the daemon writes at start):
    # it exists now, and the daemon's umask made it owner-only from its first byte.
    wait_for("the manifest's WAL", (data / "manifest.duckdb.wal").exists, 30)
    for name in ("manifest.duckdb", "manifest.duckdb.lock", "token.key", "manifest.duckdb.wal"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
