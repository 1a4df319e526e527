"""Garbage collection: vacuum every Delta table, then sweep crashed temp files.

A file is deleted only when the table's current snapshot does not name it and it has been
unreferenced for the retention period (superseded by a commit that long ago, or an orphan of a
crashed write last modified that long ago), so queries that started on an older snapshot keep
their files for that long. Run by the manifest's owner (the daemon's vacuum job or
`fleetlake gc`): its commits and its vacuum take the same per-table lock (partitions.delta).
Files of a store not yet converted to Delta tables belong to no table and are never touched.

Given the manifest (`fleetlake gc` holds the writer lock), it first compacts every raw month
still held in parts (partial commits append, partitions.writer): same rows, same fingerprint,
one file; the parts it replaces are then superseded files like any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from partitions.delta import DataFile, lake_for
from partitions.manifest import Manifest
from partitions.store import LocalStore, ObjectStore

TEMP_GRACE_S = 3600


@dataclass(frozen=True)
class GcReport:
    removed: tuple[DataFile, ...]
    dry_run: bool
    compacted: tuple[tuple[str, str, str], ...] = ()  # (dataset, fleet, month) merged from parts into one file

    @property
    def bytes_freed(self) -> int:
        return sum(f.size for f in self.removed)


def compact_parts(store: ObjectStore, manifest: Manifest, work_dir: Path | None = None,
                  dry_run: bool = False) -> list[tuple[str, str, str]]:
    """Merge every raw month held in more than one file into one; the (dataset, fleet, month) merged."""
    from partitions.writer import MonthWriter  # the writer imports the lake: keep gc's import light

    out = []
    for part in manifest.raw_partitions():
        if len(part.files) < 2:
            continue
        out.append((part.dataset, part.fleet_id, part.month))
        if not dry_run:
            with MonthWriter(store, manifest, part.fleet_id, pull_id="gc-compaction", work_dir=work_dir) as w:
                w.compact(part.dataset, part.month)
    return out


def collect_garbage(store: ObjectStore, retention_hours: float = 24.0, dry_run: bool = False,
                    manifest: Manifest | None = None, work_dir: Path | None = None) -> GcReport:
    if retention_hours < 0:
        raise ValueError("retention must be >= 0 hours")
    compacted = compact_parts(store, manifest, work_dir, dry_run) if manifest is not None else []
    lake = lake_for(store)
    removed: list[DataFile] = []
    for table in lake.tables():
        removed.extend(lake.vacuum(table, retention_hours, dry_run))
    if isinstance(store, LocalStore):
        cutoff = time.time() - max(TEMP_GRACE_S, retention_hours * 3600)
        for path in store.temp_leftovers():
            try:
                st = path.stat()
                if st.st_mtime < cutoff:
                    if not dry_run:
                        path.unlink()
                    removed.append(DataFile(path.relative_to(store.root).as_posix(), st.st_size, 0))
            except FileNotFoundError:
                continue
    return GcReport(tuple(removed), dry_run, tuple(compacted))
