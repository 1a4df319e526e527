"""Off-boarding in the store: remove every object of one fleet, and keep the audit record.

What a fleet has in the store, found by its keys (partitions/layout.py builds them all):

- its partitions in every Delta table (raw datasets and every feature flow version; tables are
  shared by all fleets and partitioned by `fleet=<id>/`): one purge commit per table removes the
  fleet's live files from the snapshot, so DuckDB, delta-rs or Spark reading the table see no row
  of it; then every file under the fleet's partition directories is deleted at once (live,
  superseded and crash orphans alike: no retention period, the customer asked for removal);
- legacy `_commits/` markers of its windows;
- its control records: fleet record, sealed credentials, its data key (sealed with the master
  key), mirrored pull checkpoints, pulled months, fired readiness thresholds, used consent nonces
  (each consent record names its fleet). The data key's local copy, in the keyring beside the
  manifest, is destroyed by the caller (ingest/offboarding.py): that is what makes every other
  copy of the sealed tokens unreadable.

Left on purpose: the audit record `_control/offboarded/<fleet>-<at>.json` (who, when, counts and
keys, no data), and the Delta logs' history of the shared tables. Those log entries hold no
telematics data, but they do name the fleet's old file paths and window records (row counts,
fingerprints). Rewriting a shared log would drop every other fleet's window records, which
`manifest rebuild` reads, so the purge commit marks them as removed instead (delta.PURGE_KEY).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common import names
from common.errors import StoreError
from partitions import layout
from partitions.delta import lake_for
from partitions.manifest import Offboarding
from partitions.store import LocalStore, ObjectStore


@dataclass(frozen=True)
class StorePurge:
    """What was removed from the store: counts per table and the control keys (no data)."""
    table_files: dict[str, int] = field(default_factory=dict)  # files deleted per table
    bytes: int = 0
    control_keys: tuple[str, ...] = ()
    other_keys: int = 0  # legacy markers and anything else under the fleet's partition directories

    def to_json(self) -> dict[str, Any]:
        return {"table_files": dict(sorted(self.table_files.items())), "bytes": self.bytes,
                "control_keys": list(self.control_keys), "other_keys": self.other_keys}


def purge_store(store: ObjectStore, fleet_id: str) -> StorePurge:
    """Remove every object of `fleet_id` from the store; safe to run again after a failure."""
    fleet_id = names.fleet_id(fleet_id)
    segment = layout.fleet_segment(fleet_id)
    lake = lake_for(store)
    table_files: dict[str, int] = {}
    size = 0
    for table in lake.tables():
        lake.purge_fleet(table, fleet_id)  # the snapshot first: no reader is ever sent to a deleted file
        prefix = f"{table}/{segment}"
        objs = store.list(prefix)
        for obj in objs:
            store.delete(obj.key)
            size += obj.size
        if objs:
            table_files[table] = len(objs)
    other = 0
    for obj in store.list(f"{layout.COMMITS}/"):
        if f"/{segment}" in obj.key:
            store.delete(obj.key)
            other += 1
    control = [layout.fleet_key(fleet_id), layout.credentials_key(fleet_id), layout.data_key_key(fleet_id),
               layout.months_key(fleet_id), layout.readiness_key(fleet_id)]
    control += [o.key for o in store.list(layout.checkpoints_prefix(fleet_id))]
    for obj in store.list(f"{layout.CONTROL}/consents/"):
        try:
            if json.loads(store.get(obj.key)).get("fleet_id") == fleet_id:
                control.append(obj.key)
        except (StoreError, ValueError, AttributeError):
            continue  # unreadable records name no fleet we could tell
    removed = []
    for key in control:
        if store.exists(key):
            store.delete(key)
            removed.append(key)
    if isinstance(store, LocalStore):
        _drop_empty_dirs(store, (segment.rstrip("/"), fleet_id))
    return StorePurge(table_files, size, tuple(sorted(removed)), other)


def write_audit(store: ObjectStore, audit: Offboarding) -> str:
    """The audit record in the store (it survives a rebuild of the manifest); returns its key."""
    key = layout.offboarding_key(audit.fleet_id, f"{audit.at:%Y%m%dT%H%M%SZ}")
    store.put(key, json.dumps(audit.to_json(), sort_keys=True).encode())
    return key


def _drop_empty_dirs(store: LocalStore, dir_names: tuple[str, ...]) -> None:
    """A directory store keeps the emptied `fleet=<id>/` (and checkpoint) directories; they name the
    fleet, so they go too."""
    found = {d for name in dir_names for d in store.root.rglob(name) if d.is_dir()}
    for d in sorted(found, key=lambda p: len(p.parts), reverse=True):
        for sub in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    pass  # not empty: a file written meanwhile is not ours to drop
        try:
            d.rmdir()
        except OSError:
            pass
