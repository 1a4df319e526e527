"""Garbage collection: vacuum every Delta table, then sweep crashed temp files.

A file is deleted only when the table's current snapshot does not name it and it has been
unreferenced for the retention period (superseded by a commit that long ago, or an orphan of a
crashed write last modified that long ago), so queries that started on an older snapshot keep
their files for that long. Run by the manifest's owner (the daemon's vacuum job or
`fleetlake gc`): its commits and its vacuum take the same per-table lock (partitions.delta).
Files of a store not yet converted to Delta tables belong to no table and are never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from partitions.delta import DataFile, lake_for
from partitions.store import LocalStore, ObjectStore

TEMP_GRACE_S = 3600


@dataclass(frozen=True)
class GcReport:
    removed: tuple[DataFile, ...]
    dry_run: bool

    @property
    def bytes_freed(self) -> int:
        return sum(f.size for f in self.removed)


def collect_garbage(store: ObjectStore, retention_hours: float = 24.0, dry_run: bool = False) -> GcReport:
    if retention_hours < 0:
        raise ValueError("retention must be >= 0 hours")
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
    return GcReport(tuple(removed), dry_run)
