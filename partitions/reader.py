"""Reading committed windows. Only files the manifest lists are ever read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from partitions.manifest import Manifest
from partitions.schema import DATASET_SCHEMAS
from partitions.store import LocalStore, ObjectStore


def local_files(store: ObjectStore, keys: list[str], cache_dir: Path) -> list[Path]:
    """Local paths for committed keys. Files are immutable, so a cached download is always right."""
    if isinstance(store, LocalStore):
        return [store.path(k) for k in keys]
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for key in keys:
        p = cache_dir / key.replace("/", "__")
        if not p.exists():
            store.get_file(key, p)
        out.append(p)
    return out


def read_month(store: ObjectStore, manifest: Manifest, fleet_id: str, month: str, cache_dir: Path,
               dataset: str = "pings") -> pa.Table:
    """The committed rows of one window (empty with the right schema when nothing is committed)."""
    part = manifest.raw_partition(fleet_id, dataset, month)
    if part is None:
        return DATASET_SCHEMAS[dataset].empty_table()
    files = local_files(store, list(part.files), cache_dir)
    return pa.concat_tables(pq.read_table(f) for f in files)


def read_snapshot(store: ObjectStore, manifest: Manifest, fleet_id: str, cache_dir: Path,
                  dataset: str = "drivers") -> pa.Table:
    """A fleet's snapshot of a dataset replaced whole by each pull (layout.SNAPSHOT_DATASETS), whatever
    month it was taken in; empty with the right schema when none is committed."""
    held = manifest.raw_partitions(fleet_id, dataset)
    if not held:
        return DATASET_SCHEMAS[dataset].empty_table()
    return read_month(store, manifest, fleet_id, max(held, key=lambda p: p.seq).month, cache_dir, dataset)
