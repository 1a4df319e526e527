"""A damaged manifest is found, named once, never written into, and rebuilt into a new file.

Three kinds of damage an unlucky operator meets: a file cut in half (a full disk, a copy that
died), 64 KB of garbage in the middle (a bad block), and a zero-length file (a restore that
failed). Each is refused at start by a real `fleetlake run`, each is reported by the /readyz of a
running daemon whose file is damaged under it, and `fleetlake manifest rebuild` recovers each
from the store, keeping the damaged file aside untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable

import httpx
import pytest
from cryptography.fernet import Fernet

from common.errors import ManifestDamaged
from partitions import Manifest
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.cli import run_cli
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garbage(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(max(0, size // 2 - 32768))
        fh.write(os.urandom(65536))


def _zero(path: Path) -> None:
    os.truncate(path, 0)


DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": _truncate, "garbage": _garbage, "zero-length": _zero}


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A data dir (manifest and file store) after a real backfill of one fleet."""
    tmp = tmp_path_factory.mktemp("landed")
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_HISTORY_MONTHS": "1"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        location = loopback.get(run_cli(env, "connect", "samsara", "--fleet", "acme-freight").stdout.strip()
                             ).headers["location"]
        q = httpx.URL(location).params
        assert run_cli(env, "connect", "samsara", "--fleet", "acme-freight", f"--code={q['code']}",
                    f"--state={q['state']}").returncode == 0
        r = run_cli(env, "backfill", "acme-freight")
        assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "data", env


def _copy(landed: tuple[Path, dict[str, str]], tmp: Path) -> tuple[Path, dict[str, str]]:
    data, env = landed
    shutil.copytree(data, tmp / "data")
    # The store is a file:// URL under the data dir: the copy's own.
    return tmp / "data", {**env, "FLEETLAKE_DATA_DIR": str(tmp / "data"), "FLEETLAKE_HTTP_PORT": str(free_port()),
                          "FLEETLAKE_API_TOKEN": "t-" + uuid.uuid4().hex}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_manifest_stops_the_start_and_rebuild_recovers_it(kind: str, landed, tmp_path: Path) -> None:
    data, env = _copy(landed, tmp_path)
    path = data / "manifest.duckdb"
    with Manifest(path, read_only=True) as m:
        partitions = m.raw_partitions()
    assert partitions
    DAMAGE[kind](path)
    damaged = path.read_bytes()

    with pytest.raises(ManifestDamaged, match="manifest rebuild"):
        Manifest(path)
    assert path.read_bytes() == damaged  # opening it wrote nothing into it

    run = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "run"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "is damaged" in run.stderr and "fleetlake manifest rebuild" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert path.read_bytes() == damaged

    r = run_cli(env, "manifest", "rebuild")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "damaged" in r.stderr
    aside = list(data.glob("manifest.duckdb.damaged-*"))
    assert [p.read_bytes() == damaged for p in aside if not p.name.endswith(".wal")] == [True]
    with Manifest(path, read_only=True) as m:
        assert m.raw_partitions() == partitions
    # A healthy manifest is rebuilt in place: nothing more is set aside.
    assert run_cli(env, "manifest", "rebuild").returncode == 0
    assert len([p for p in data.glob("manifest.duckdb.damaged-*") if not p.name.endswith(".wal")]) == 1


def test_readyz_reports_a_manifest_damaged_under_a_running_daemon(landed, tmp_path: Path) -> None:
    data, env = _copy(landed, tmp_path)
    # No TSP, no work: the daemon idles, so the file only changes when the test changes it.
    env = {k: v for k, v in env.items() if k != "FLEETLAKE_SANDBOX_URL"}
    path = data / "manifest.duckdb"
    d = DaemonProcess(env, tmp_path / "daemon.log")
    d.start()
    try:
        wait_for("ready", lambda: loopback.get(f"{d.base}/readyz").status_code == 200, 60)
        good = path.read_bytes()
        for kind, damage in DAMAGE.items():
            damage(path)
            r = loopback.get(f"{d.base}/readyz")
            problems = r.json()["problems"]
            assert r.status_code == 503 and any("manifest: damaged" in p and "manifest rebuild" in p
                                                for p in problems), (kind, problems)
            assert str(data) not in r.text, kind  # no internal paths
            path.write_bytes(good)
            assert loopback.get(f"{d.base}/readyz").status_code == 200, kind
    finally:
        d.kill()


def test_a_missing_manifest_over_a_landed_store_is_refused_or_rebuilt(landed, tmp_path: Path) -> None:
    data, env = _copy(landed, tmp_path)
    path = data / "manifest.duckdb"
    with Manifest(path, read_only=True) as m:
        fleets, partitions = m.fleets(), m.raw_partitions()
    assert [f.fleet_id for f in fleets] == ["acme-freight"] and partitions
    for f in (path, Path(f"{path}.wal")):
        f.unlink(missing_ok=True)
    env = {k: v for k, v in env.items() if k != "FLEETLAKE_SANDBOX_URL"}  # no TSP: nothing to pull

    # `run`, and any command that would otherwise create a fresh, empty manifest, refuses in one line.
    for command in (["run"], ["status"]):
        r = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", *command], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode != 0 and "does not exist" in r.stderr and "fleetlake manifest rebuild" in r.stderr, r
        assert "1 fleet record in _control/fleets/" in r.stderr and "raw/pings" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not path.exists(), command  # nothing empty was left for the next start to trust

    # Asked to, the daemon rebuilds it at start and runs with the fleet and its data.
    d = DaemonProcess({**env, "FLEETLAKE_REBUILD_MISSING_MANIFEST": "true"}, tmp_path / "daemon.log")
    d.start()
    try:
        wait_for("ready", lambda: loopback.get(f"{d.base}/readyz").status_code == 200, 60)
        api = {"Authorization": f"Bearer {env['FLEETLAKE_API_TOKEN']}"}
        [view] = loopback.get(f"{d.base}/fleets", headers=api).json()
        assert view["fleet_id"] == "acme-freight" and view["status"] == fleets[0].status.value, view
        months = loopback.get(f"{d.base}/fleets/acme-freight/status", headers=api).json()["months"]
        assert sorted(months) == sorted({p.month for p in partitions}), months
    finally:
        d.kill()
