"""Garbage collection of orphans: data files no committed version references, crashed temp files.

Run only by the manifest's writer (which holds its lock), so no commit is in flight. Only
windows the manifest knows are swept: an empty or lost manifest deletes nothing (rebuild first).
"""

from __future__ import annotations

import time

from partitions.manifest import Manifest
from partitions.store import LocalStore, ObjectStore

TEMP_GRACE_S = 3600


def collect_garbage(store: ObjectStore, manifest: Manifest) -> list[str]:
    deleted = []
    for part in manifest.raw_partitions():
        prefix = f"raw/{part.dataset}/fleet={part.fleet_id}/month={part.month}/"
        keep = set(part.files)
        for obj in store.list(prefix):
            if obj.key not in keep and obj.key.endswith(".parquet"):
                store.delete(obj.key)
                deleted.append(obj.key)
    if isinstance(store, LocalStore):
        cutoff = time.time() - TEMP_GRACE_S
        for path in store.temp_leftovers():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted.append(str(path.relative_to(store.root)))
            except FileNotFoundError:
                continue
    return deleted
