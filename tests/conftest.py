from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest

from connectors.sandbox.server import SandboxServer
from connectors.sandbox.world import SandboxConfig, default_config

# The sandbox clock is frozen in tests, so what exists is the same on every run.
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def sandbox_config(**overrides: object) -> SandboxConfig:
    base = default_config(seed=11, vehicles=3, ping_interval_s=30, history_months=2, now=NOW)
    return SandboxConfig(**{**base.__dict__, **overrides})


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_config()) as server:
        yield server
