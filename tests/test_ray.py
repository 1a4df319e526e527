"""Feature windows on a real Ray cluster give the same lake and manifest as the local process pool.

A head and a worker node run as separate `ray start` processes (tests/ray_cluster.py); the
store is a real SeaweedFS. The same two fleets are landed in two stores, and every active flow
(plus one that fails on one window) runs once with FLEETLAKE_EXECUTOR=local and once with
FLEETLAKE_EXECUTOR=ray. The Ray workers get their S3 credentials from their own environment:
this process has none in its environment and sends none (`worker_s3`), so a run that succeeds
was computed by Ray workers that reached the store by themselves.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pytest

from common.errors import ConfigError
from ingest.engine.backend import TaskBackend
from ingest.engine.executor import execute
from ingest.engine.planner import plan
from ingest.engine.runs import FeatureReport, run_features
from ingest.flows.base import Flow
from ingest.flows.registry import active_flows
from ingest.wiring.settings import load_settings
from partitions import Manifest
from partitions.delta import lake_for
from partitions.store import open_store
from tests.support import flaky_flow
from tests.support import seaweed as sw
from tests.support.pings import sim_table, simulator
from tests.support.ray_cluster import RayCluster, start_cluster
from tests.test_writer import write

NOW_MS = 1_900_000_000_000
FLEETS = {"fleet-a": 2, "fleet-b": 3}  # fleet -> simulator seed
MONTHS = ["2025-02", "2025-03"]


def _flows() -> list[Flow]:
    return [*active_flows(None), flaky_flow.FLOW]


@pytest.fixture(scope="module")
def ray_cluster(seaweed_s3: str) -> Iterator[RayCluster]:
    cluster = start_cluster({"AWS_ACCESS_KEY_ID": sw.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": sw.SECRET_KEY})
    try:
        yield cluster
    finally:
        cluster.stop()


def _land(store_url: str, endpoint: str, work: Path) -> Manifest:
    store = open_store(store_url, sw.s3_options(endpoint))
    m = Manifest(work / "manifest.duckdb")
    for fleet, seed in FLEETS.items():
        # small on purpose (one truck, 60 s pings): the test is about where tasks run, not how fast
        sim = simulator(vehicles=1, interval=60, seed=seed)
        write(store, m, [sim_table(sim, MONTHS, fleet_id=fleet)], work, fleet=fleet)
    return m


def _lake(store_url: str, endpoint: str) -> dict[str, Any]:
    """Every Delta table: its live files (content-named, so equal content means equal names) and its rows."""
    lake = lake_for(open_store(store_url, sw.s3_options(endpoint)))
    out: dict[str, Any] = {}
    for table in lake.tables():
        live = lake.live_files(table)
        dt = lake.open(table)
        assert dt is not None
        rows = sorted(repr(sorted(r.items())) for r in dt.to_pyarrow_table().to_pylist())
        out[table] = ({k: sorted(f.key for f in files) for k, files in live.items()}, rows)
    return out


def _manifest(path: Path) -> dict[str, list[tuple]]:
    """Every manifest table's rows without what differs by nature between two runs: times and run ids."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        for t in tables:
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND "
                "data_type NOT LIKE 'TIMESTAMP%' AND column_name <> 'run_id' ORDER BY ordinal_position",
                [t]).fetchall()]
            select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
            out[t] = sorted(con.execute(f'SELECT {select} FROM "{t}"').fetchall(), key=repr)
    return out


def _run(executor: str, address: str | None, endpoint: str, tmp: Path) -> tuple[FeatureReport, str, Path]:
    store_url = f"s3://{sw.BUCKET}/ray-{executor}-{uuid.uuid4().hex[:8]}"
    work = tmp / executor
    work.mkdir()
    m = _land(store_url, endpoint, work)
    try:
        report = run_features(m, _flows(), store_url, sw.s3_options(endpoint), work / "cache", NOW_MS, 2,
                              executor=executor, ray_address=address)
    finally:
        m.close()
    return report, store_url, work


@pytest.mark.slow
def test_ray_cluster_run_equals_local_run(ray_cluster: RayCluster, seaweed_s3: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    local, local_url, local_work = _run("local", None, seaweed_s3, tmp_path)
    # The daemon runs feature passes on its work thread, not the main thread: so does this one.
    with ThreadPoolExecutor(1, thread_name_prefix="work") as work_thread:
        on_ray, ray_url, ray_work = work_thread.submit(_run, "ray", ray_cluster.client_address, seaweed_s3,
                                                       tmp_path).result()

    # month windows (the quote window needs 12 complete months, these fleets have two)
    windows = len(FLEETS) * len(MONTHS) * sum(1 for f in _flows() if f.window == "month")
    for report in (local, on_ray):
        assert len(report.results) == windows
        assert [(r.flow, r.fleet_id, r.month) for r in report.failed] == [
            ("flaky", "fleet-a", "2025-02")]
    # The task's own error, not Ray's wrapper with its remote traceback.
    assert [r.error for r in on_ray.failed] == ["ValueError: cannot compute this window"]
    # Ray workers never touched the daemon's disk; the local pool used its input cache there.
    assert (local_work / "cache").is_dir() and not (ray_work / "cache").exists()

    lake_local, lake_ray = _lake(local_url, seaweed_s3), _lake(ray_url, seaweed_s3)
    assert len(lake_ray) == 1 + sum(1 for f in _flows() if f.window == "month")  # raw pings, a table per month flow version
    assert lake_ray == lake_local
    manifest_local, manifest_ray = _manifest(local_work / "manifest.duckdb"), _manifest(ray_work / "manifest.duckdb")
    assert len(manifest_ray["flow_runs"]) == windows and len(manifest_ray["raw_partitions"]) == 4
    assert manifest_ray == manifest_local


class _Recording:
    """A remote backend that runs each task here, keeping the pickled argument it would have shipped."""
    remote = True

    def __init__(self) -> None:
        self.shipped: list[bytes] = []

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future[Any]:
        self.shipped.append(pickle.dumps(arg))
        f: Future[Any] = Future()
        f.set_exception(RuntimeError("not run"))
        return f

    def close(self) -> None:
        pass


def test_a_remote_backend_is_sent_neither_the_s3_secret_nor_a_daemon_path(seaweed_s3: str, tmp_path: Path) -> None:
    store_url = f"s3://{sw.BUCKET}/ray-spec-{uuid.uuid4().hex[:8]}"
    m = _land(store_url, seaweed_s3, tmp_path)
    try:
        backend: TaskBackend = _Recording()
        flows = [flaky_flow.FLOW]
        results = execute(m, plan(m, flows), flows, store_url, sw.s3_options(seaweed_s3), tmp_path / "cache",
                          NOW_MS, backend=backend)
    finally:
        m.close()
    shipped = backend.shipped  # type: ignore[attr-defined]
    assert len(shipped) == len(results) == 4
    for blob in shipped:
        # booleans first, so a failure never prints the pickled argument (and the key in it)
        keys_sent = sw.SECRET_KEY.encode() in blob or sw.ACCESS_KEY.encode() in blob
        path_sent = str(tmp_path).encode() in blob
        assert not keys_sent, "a remote worker was sent the daemon's S3 keys"
        assert not path_sent, "a remote worker was sent a path on the daemon's disk"
        assert seaweed_s3.encode() in blob  # the endpoint is sent: workers need it


@pytest.mark.parametrize("env, setting", [
    ({"FLEETLAKE_EXECUTOR": "ray", "FLEETLAKE_STORE_URL": "s3://b/lake"}, "FLEETLAKE_RAY_ADDRESS"),
    ({"FLEETLAKE_EXECUTOR": "ray", "FLEETLAKE_RAY_ADDRESS": "ray://head:10001"}, "FLEETLAKE_EXECUTOR"),
    ({"FLEETLAKE_EXECUTOR": "spark"}, "FLEETLAKE_EXECUTOR")])
def test_a_ray_executor_without_an_address_or_an_s3_store_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], setting: str) -> None:
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == setting
    monkeypatch.setenv("FLEETLAKE_STORE_URL", "s3://b/lake")
    monkeypatch.setenv("FLEETLAKE_RAY_ADDRESS", "ray://head:10001")
    if env["FLEETLAKE_EXECUTOR"] == "ray":
        assert load_settings().executor == "ray"


def test_the_core_imports_and_runs_locally_without_ray(tmp_path: Path) -> None:
    """ray is an optional extra: with it unimportable, every core module imports, and asking for Ray says how to get it."""
    script = """
import importlib, pkgutil, sys
sys.modules["ray"] = None  # as if not installed: `import ray` raises ImportError
import common, connectors, geo, ingest, partitions
for pkg in (common, connectors, geo, ingest, partitions):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
from common.errors import ConfigError
from ingest.engine.backend import open_backend
pool = open_backend("local", 1, [])
print(pool.submit(abs, -3).result())
pool.close()
try:
    open_backend("ray", 1, [], "ray://127.0.0.1:1")
except ConfigError as e:
    print(e.setting, e)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "3"
    assert lines[1].startswith("FLEETLAKE_EXECUTOR") and "pip install 'fleetlake[ray]'" in lines[1]


def test_a_fleet_pulled_through_the_ray_cluster_commits_what_an_in_process_pull_commits(
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    """Pull slices as Ray tasks on the two nodes: they fetch from the sandbox with access tokens
    only and send their spool back as bytes (no daemon path); the daemon commits."""
    import os

    from ingest.engine.ray_backend import RayBackend
    from ingest.pull.workers import RayWorkers
    from sandbox.server import SandboxServer
    from tests.conftest import sandbox_config
    from tests.test_pull_workers import _pull

    ran: list[int] = []
    with SandboxServer(sandbox_config(samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as server:
        local, _ = _pull(server, tmp_path / "local", None)
        workers = RayWorkers(RayBackend(ray_cluster.client_address), 4)
        try:
            on_ray, report = _pull(server, tmp_path / "ray", workers, on_slice=lambda r: ran.append(r.worker_pid))
        finally:
            workers.close()
    assert on_ray == local
    assert len(ran) == report.slices_pulled + (report.events.slices_pulled if report.events else 0)
    assert ran and os.getpid() not in ran  # every slice ran in a Ray worker, none in this process
