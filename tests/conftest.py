from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import httpx
import pytest

from sandbox.server import SandboxServer
from sandbox.world import SandboxConfig, default_config

# The sandbox clock is frozen in tests, so what exists is the same on every run.
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def sandbox_config(**overrides: object) -> SandboxConfig:
    base = default_config(seed=11, vehicles=3, ping_interval_s=30, history_months=2, now=NOW)
    return SandboxConfig(**{**base.__dict__, **overrides})


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with loopback.client(timeout=30) as c:
        yield c


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    # Rate limits are tested with their own servers; elsewhere they would only make tests flaky.
    with SandboxServer(sandbox_config(samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as server:
        yield server


# --------------------------------------------------------------------------- object stores
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from partitions.store import ObjectStore, open_store  # noqa: E402
from tests.support import loopback  # noqa: E402
from tests.support import seaweed as _seaweed  # noqa: E402


@pytest.fixture(scope="session")
def seaweed_s3() -> Iterator[str]:
    server = _seaweed.start_seaweed()
    try:
        yield server.endpoint
    finally:
        server.stop()


s3_options = _seaweed.s3_options


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    endpoint = request.getfixturevalue("seaweed_s3")
    request.node.s3_endpoint = endpoint
    return f"s3://{_seaweed.BUCKET}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> ObjectStore:
    endpoint = getattr(request.node, "s3_endpoint", None)
    return open_store(store_url, s3_options(endpoint) if endpoint else None)


# --------------------------------------------------------------------------- scheduling
# scripts/test.sh hands whole files to the xdist workers (--dist loadfile) in collection order
# (--no-loadscope-reorder; xdist's own reorder puts files with many tests first, which left the
# long single-test soaks for last and the other workers idle while they ran). The files that
# take longest on 2 cores (measured with --durations) go first; the rest keep their order.
_LONGEST_FIRST = (
    "test_lake_demo.py", "test_ray.py", "test_stuck.py", "test_control_rebuild.py", "test_drivers_truth.py",
    "test_pull_sandbox.py", "test_crash_s3.py", "test_daemon_e2e.py", "test_demo.py", "test_time_to_quote.py",
    "test_manifest_damage.py", "test_shredding.py", "test_readme_recipe.py", "test_console_browser.py",
    "test_hos_pull.py", "test_crash.py", "test_pull_workers.py", "test_features_truth.py", "test_cli_commands.py",
    "test_manifest_reader.py", "test_cli_errors.py", "test_sdk_contract.py", "test_offboard.py", "test_service.py",
    "test_incremental.py", "test_gc.py", "test_motive_contract.py", "test_plugin_install.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-scope ordering, which it keeps within a file
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [n for n in _LONGEST_FIRST if not (Path(__file__).parent / n).exists()]
    if missing:  # a renamed file would silently lose its place
        raise pytest.UsageError(f"tests/conftest.py _LONGEST_FIRST names files that do not exist: {missing}")
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests stay in order
