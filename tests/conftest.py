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
    with httpx.Client(timeout=30) as c:
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
