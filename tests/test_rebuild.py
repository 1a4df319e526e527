"""Rebuilding the manifest from the store alone, as a container that lost its disk would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.engine.planner import plan
from ingest.engine.runs import run_features
from partitions import Manifest, rebuild_raw
from partitions.store import LocalStore, ObjectStore
from tests.support.flows import flow
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

DQ = flow("data_quality@1")
DISTANCE = flow("distance@2")


def test_rebuild_restores_exactly_what_was_committed(store: ObjectStore, tmp_path: Path) -> None:
    sim = simulator()
    with Manifest(tmp_path / "a.duckdb") as m:
        write(store, m, [sim_table(sim, ["2025-02", "2025-03"])], tmp_path)
        write(store, m, [sim_table(simulator(seed=9), ["2025-03"])], tmp_path)  # a second version of March
        original = m.raw_partitions()
    assert {p.month: p.seq for p in original} == {"2025-02": 1, "2025-03": 2}
    with Manifest(tmp_path / "rebuilt.duckdb") as fresh:
        report = rebuild_raw(store, fresh)
        assert report.problems == () and report.windows == 2 and report.markers_read == 3
        assert fresh.raw_partitions() == original
        # Nothing to redo: the same input is "unchanged" against the rebuilt manifest.
        results, _ = write(store, fresh, [sim_table(sim, ["2025-02"])], tmp_path)
        assert [r.status for r in results] == ["unchanged"]


def test_rebuild_reports_markers_whose_data_is_gone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "a.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
        lost = m.raw_partitions()[0].files[0]
    store.delete(lost)
    with Manifest(tmp_path / "b.duckdb") as fresh:
        report = rebuild_raw(store, fresh)
        assert report.windows == 0 and "data files missing" in report.problems[0]


def test_manifest_rebuild_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = LocalStore(data / "store")
    flows = [DISTANCE, DQ]
    with Manifest(data / "manifest.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
        original = m.raw_partitions()
        assert not run_features(m, flows, store.url, None, tmp_path / "c", 1_900_000_000_000, 1).failed
        runs = m.runs()
    (data / "manifest.duckdb").unlink()
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data)}
    r = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "manifest", "rebuild"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"windows": 1, "markers_read": 1, "feature_runs": 2, "feature_markers_read": 2,
                                    "problems": []}
    with Manifest(data / "manifest.duckdb") as m:
        assert m.raw_partitions() == original
        assert sorted((r.run_id, r.outputs) for r in m.runs()) == sorted((r.run_id, r.outputs) for r in runs)
        assert plan(m, flows) == []  # the rebuilt manifest recomputes nothing


@pytest.mark.parametrize("env, setting", [({"FLEETLAKE_STORE_URL": "ftp://x"}, "FLEETLAKE_STORE_URL"),
                                          ({"FLEETLAKE_WRITER_MEMORY_LIMIT": "lots"}, "FLEETLAKE_WRITER_MEMORY_LIMIT")])
def test_bad_settings_fail_naming_the_setting(tmp_path: Path, env: dict, setting: str) -> None:
    r = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "manifest", "rebuild"], capture_output=True, text=True,
                       env={**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path), **env}, timeout=60)
    assert r.returncode == 2 and setting in r.stderr and "Traceback" not in r.stderr
