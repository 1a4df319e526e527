"""A read view of the manifest cannot write: mypy refuses every write through a ManifestReader."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]

READS = """
from partitions.manifest import Manifest

def ok(m: Manifest) -> None:
    with m.reading() as r:
        r.fleets()
        r.latest_runs("fleet-a", succeeded_only=True)
        r.pending_windows([("distance", 2, "fp", "pings")], "fleet-a")
"""

WRITES = """
from common.states import FleetStatus
from partitions.manifest import Manifest

def bad(m: Manifest) -> None:
    with m.reading() as r:
        r.upsert_fleet("fleet-a", "samsara", FleetStatus.ACTIVE)
        r.record_readiness("fleet-a", 3, "2025-01", "2025-03", False)
        with r.transaction():
            pass
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """One mypy run over both snippets (each run type-checks the project's import closure)."""
    d = tmp_path_factory.mktemp("mypy")
    for name, source in (("reads.py", READS), ("writes.py", WRITES)):
        (d / name).write_text(textwrap.dedent(source))
    out, err, status = api.run([str(d / "reads.py"), str(d / "writes.py"), "--config-file", str(ROOT / "pyproject.toml"),
                                "--no-incremental", "--follow-imports=silent", "--cache-dir", str(d / ".mypy_cache")])
    return out + err, status


def test_reads_through_a_read_view_type_check(mypy_output: tuple[str, int]) -> None:
    out, status = mypy_output
    assert status == 1 and "writes.py:" in out, out  # mypy ran over both snippets
    assert "reads.py:" not in out, out


def test_mypy_refuses_every_write_through_a_read_view(mypy_output: tuple[str, int]) -> None:
    out, status = mypy_output
    assert status == 1
    errors = [line for line in out.splitlines() if "writes.py:" in line and ": error:" in line]
    for method in ("upsert_fleet", "record_readiness", "transaction"):
        assert any(f'"ManifestReader" has no attribute "{method}"' in line for line in errors), out
