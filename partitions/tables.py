"""Which Delta tables a store holds: each found by the first entry of its log."""

from __future__ import annotations

from partitions import layout
from partitions.store import LocalStore, ObjectStore

_LOG_START = f"{layout.DELTA_LOG}/00000000000000000000.json"


def tables_in(store: ObjectStore) -> list[str]:
    if isinstance(store, LocalStore):  # the tables' own directories, not a walk over every data file
        return sorted({t for pattern in (f"raw/*/{_LOG_START}", f"features/*/v*/{_LOG_START}")
                       for p in store.root.glob(pattern)
                       if (t := layout.is_table_log_start(p.relative_to(store.root).as_posix()))})
    found = set()
    for prefix in ("raw/", "features/"):
        for obj in store.list(prefix):
            t = layout.is_table_log_start(obj.key)
            if t:
                found.add(t)
    return sorted(found)
