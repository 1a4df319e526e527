"""A store written before the Delta tables converts in place, nothing recomputed or rewritten.

tests/data/legacy-demo-store.tar.gz is the store `fleetlake demo --vehicles 1 --history-months 1`
made with the code before the Delta tables (commit 034b6de): `_commits/` markers, no `_delta_log`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from partitions import Manifest, RawPartition, layout
from partitions.delta import lake_for
from partitions.store import LocalStore

FIXTURE = Path(__file__).parent / "data" / "legacy-demo-store.tar.gz"


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
            for p in root.rglob("*.parquet")}


def test_a_demo_store_with_commit_markers_converts_in_place(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    data = tmp_path / "fleetlake-data"
    root = data / "store"
    store = LocalStore(root)
    assert not list(root.rglob("_delta_log")) and list(root.rglob("_commits"))
    # What the markers say is committed: the newest raw marker per window, the newest run per feature window.
    raw: dict[tuple, RawPartition] = {}
    for p in sorted(root.glob("_commits/raw/*/*/*/*.json")):
        part = RawPartition.from_json(json.loads(p.read_text()))
        key = (part.dataset, part.fleet_id, part.month)
        if key not in raw or raw[key].seq < part.seq:
            raw[key] = part
    runs: dict[tuple, dict] = {}
    for p in root.glob("_commits/features/*/*/*/*/*.json"):
        run = json.loads(p.read_text())
        key = (run["flow"], run["version"], run["fleet_id"], run["month"])
        if key not in runs or runs[key]["committed_at"] < run["committed_at"]:
            runs[key] = run
    before = _digests(root)

    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(data)}
    r = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "migrate"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["windows"] == len(raw) and report["feature_runs"] == len(runs) and report["problems"] == []
    assert _digests(root) == before  # no file rewritten, none added
    assert not list(root.rglob("_commits/**/*.json"))

    lake = lake_for(store)
    for (dataset, fleet, month), part in raw.items():
        live = lake.live_files(layout.raw_table(dataset))[(fleet, month)]
        assert tuple(f.key for f in live) == part.files and sum(f.rows for f in live) == part.rows
    for (flow, version, fleet, month), run in runs.items():
        live = lake.live_files(layout.feature_table(flow, version))[(fleet, month)]
        assert [f.key for f in live] == run["outputs"]

    # The manifest rebuilt from the converted store has exactly the markers' records.
    rb = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "manifest", "rebuild"], env=env, capture_output=True,
                        text=True, timeout=300)
    assert rb.returncode == 0, rb.stdout + rb.stderr
    with Manifest(data / "manifest.duckdb") as m:
        assert {(p.dataset, p.fleet_id, p.month): p for p in m.raw_partitions()} == raw
        rebuilt = {(r.flow, r.version, r.fleet_id, r.month): (r.run_id, list(r.outputs))
                   for r in m.latest_runs(succeeded_only=True)}
        assert rebuilt == {k: (r["run_id"], r["outputs"]) for k, r in runs.items()}

    again = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "migrate"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert json.loads(again.stdout) == {"windows": 0, "feature_runs": 0, "markers": 0, "problems": []}
