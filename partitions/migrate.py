"""Convert a store written before the Delta tables (`_commits/` markers) in place.

Nothing is recomputed or rewritten: the Parquet files the newest marker of each window names are
committed, as they are, to the window's Delta table with the marker's record as the commit's
metadata, so `partitions.rebuild` finds exactly what the markers said. A window the table already
holds (converted before, or written since by the new code) is left alone. Markers are deleted
once every window converted; a crash mid-way is finished by running it again.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from common.errors import StoreError
from partitions import layout
from partitions.delta import RUN_KEY, WINDOW_KEY, DataFile, lake_for
from partitions.manifest import RawPartition
from partitions.schema import DATASET_SCHEMAS
from partitions.store import ObjectStore


@dataclass(frozen=True)
class MigrationReport:
    windows: int  # raw windows committed to Delta tables
    runs: int  # feature windows committed to Delta tables
    markers: int  # markers read (and deleted when nothing went wrong)
    problems: tuple[str, ...]


def migrate_markers(store: ObjectStore) -> MigrationReport:
    markers = store.list(f"{layout.COMMITS}/")
    raw: dict[tuple[str, str, str], tuple[int, str]] = {}
    features: list[str] = []
    for obj in markers:
        parsed = layout.parse_raw_marker(obj.key)
        if parsed is not None:
            dataset, fleet, month, seq = parsed
            if seq > raw.get((dataset, fleet, month), (0, ""))[0]:
                raw[(dataset, fleet, month)] = (seq, obj.key)
        elif obj.key.startswith(f"{layout.COMMITS}/features/") and obj.key.endswith(".json"):
            features.append(obj.key)
    if not markers:
        return MigrationReport(0, 0, 0, ())
    lake = lake_for(store)
    sizes = {o.key: o.size for p in ("raw/", "features/") for o in store.list(p)}
    problems: list[str] = []
    windows = runs = 0
    for (dataset, fleet, month), (_seq, key) in sorted(raw.items()):
        try:
            part = RawPartition.from_json(json.loads(store.get(key)))
            files = _files(store, part.files, sizes, part.rows)
            windows += lake.commit_window(
                layout.raw_table(dataset), DATASET_SCHEMAS[dataset], fleet, month, files,
                {WINDOW_KEY: json.dumps(part.to_json(), sort_keys=True), "fleetlake.fingerprint": part.fingerprint,
                 "fleetlake.pull_id": part.pull_id or "", "fleetlake.migrated_from": key}, only_if_absent=True)
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{key}: {type(e).__name__}: {e}")
    for run in _newest_runs(store, features, problems):
        key = run.pop("_marker")
        try:
            table = layout.feature_table(run["flow"], int(run["version"]))
            files = _files(store, tuple(run["outputs"]), sizes, run.get("rows"))
            schema = None if lake.open(table) is not None else _schema(store, files[0].key)
            runs += lake.commit_window(table, schema, run["fleet_id"], run["month"], files,
                                       {RUN_KEY: json.dumps(run, sort_keys=True), "fleetlake.run_id": run["run_id"],
                                        "fleetlake.migrated_from": key}, only_if_absent=True)
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{key}: {type(e).__name__}: {e}")
    if not problems:
        for obj in markers:
            store.delete(obj.key)
    return MigrationReport(windows, runs, len(markers), tuple(problems))


def _newest_runs(store: ObjectStore, keys: list[str], problems: list[str]) -> list[dict[str, Any]]:
    """The newest run marker of each feature window (older runs' files are superseded)."""
    newest: dict[tuple, dict[str, Any]] = {}
    for key in keys:
        try:
            run = json.loads(store.get(key))
            window = (run["flow"], int(run["version"]), run["fleet_id"], run["month"])
            stamp = datetime.fromisoformat(run["committed_at"])
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{key}: unreadable marker ({type(e).__name__})")
            continue
        run["_marker"] = key
        if window not in newest or datetime.fromisoformat(newest[window]["committed_at"]) < stamp:
            newest[window] = run
    return [newest[w] for w in sorted(newest)]


def _files(store: ObjectStore, keys: tuple[str, ...], sizes: dict[str, int], rows: int | None) -> list[DataFile]:
    missing = [k for k in keys if k not in sizes]
    if missing:
        raise StoreError(f"data files missing: {', '.join(missing)}")
    if len(keys) == 1 and rows is not None:
        return [DataFile(keys[0], sizes[keys[0]], int(rows))]
    return [DataFile(k, sizes[k], _footer(store, k).num_rows) for k in keys]


def _footer(store: ObjectStore, key: str) -> pq.FileMetaData:
    with tempfile.TemporaryDirectory(prefix="fleetlake-migrate-") as d:
        p = Path(d) / "f.parquet"
        store.get_file(key, p)
        return pq.read_metadata(p)


def _schema(store: ObjectStore, key: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="fleetlake-migrate-") as d:
        p = Path(d) / "f.parquet"
        store.get_file(key, p)
        return pq.read_schema(p)
