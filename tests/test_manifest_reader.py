"""A read view of the manifest cannot write: mypy refuses every write through a ManifestReader."""

from __future__ import annotations

import textwrap
from pathlib import Path

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


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    f = tmp_path / "snippet.py"
    f.write_text(textwrap.dedent(source))
    out, err, status = api.run([str(f), "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
                                "--follow-imports=silent", "--cache-dir", str(tmp_path / ".mypy_cache")])
    return out + err, status


def test_reads_through_a_read_view_type_check(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, READS)
    assert status == 0, out


def test_mypy_refuses_every_write_through_a_read_view(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, WRITES)
    assert status == 1
    for method in ("upsert_fleet", "record_readiness", "transaction"):
        assert f'"ManifestReader" has no attribute "{method}"' in out, out
