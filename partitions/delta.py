"""The store's Delta Lake tables (delta-rs): one atomic commit per window, read by any engine.

We keep writing our own sorted, dictionary-encoded, content-named Parquet files and only use
delta-rs to *commit* them: `create_write_transaction` with add actions for the window's new files
and remove actions for its previous ones, in one log entry. So a window is replaced atomically for
every reader of the log. Windows of several fleets waiting for the same table at once share that
log entry (`Lake._grouped`), each still whole in it.

- One writer per table: the process that owns the manifest (worker processes hand their files
  back to it). Inside it, a lock per table serialises commits with vacuum, and every commit
  checks (under that lock) that the files it names exist: a vacuum can never delete a file the
  snapshot names, even when a window returns to an earlier content-named file.
- S3: delta-rs needs an atomic "create if absent" for each log entry. We ask for S3 conditional
  put (`conditional_put=etag`, i.e. PUT with If-None-Match: *), which AWS S3 and SeaweedFS honour
  (tests/test_delta.py checks SeaweedFS refuses a second If-None-Match PUT). We do not use AWS_S3_ALLOW_UNSAFE_RENAME:
  it is only safe with a single writer on a single host, and nothing on S3 would enforce that.
- Each window commit carries our record of the window in the commit's custom metadata
  (`fleetlake.window` for raw data, `fleetlake.run` for feature runs, plus fingerprint, pull id
  and run id as plain keys). `partitions.rebuild` reads them back. Table property
  `delta.logRetentionDuration` is set long, because the log's commit entries *are* those records.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, CommitProperties, RemoveAction

from common.errors import StoreError
from partitions import layout
from partitions.store import TMP_PREFIX, LocalStore, ObjectStore, S3Store
from partitions.tables import tables_in

# The log is our record of every window; never let delta-rs expire it (default is 30 days).
# A checkpoint every 10 commits, not delta-rs's 100: each commit and each update of the open
# handle replays the log entries since the last checkpoint, so with 100 their CPU grew from 5 to
# 30 ms per commit over each cycle (8-13 ms on average at 300 live files, 25-36 ms at 3,000); with
# 10, 5-9 ms and 17-28 ms, checkpoint writes included. Tables made before keep their interval.
CHECKPOINT_INTERVAL = 10
TABLE_CONFIG = {"delta.logRetentionDuration": "interval 36500 days",
                "delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}
WINDOW_KEY = "fleetlake.window"
RUN_KEY = "fleetlake.run"
PURGE_KEY = "fleetlake.purged_fleet"  # a commit that removed every file of an off-boarded fleet
# A commit that made one window the fleet's only one in a snapshot table (layout.SNAPSHOT_DATASETS):
# the fleet's windows committed before it were replaced on purpose, like a purge's.
SNAPSHOT_KEY = "fleetlake.snapshot_of"
# A commit of several windows at once (Lake._grouped): each window's metadata, as a JSON list.
BATCH_KEY = "fleetlake.windows"


@dataclass(frozen=True)
class DataFile:
    """A Parquet file of a table: its store key, size in bytes and row count."""
    key: str
    size: int
    rows: int


@dataclass(frozen=True)
class WindowCommit:
    """The newest commit that replaced one (fleet, month) window of a table."""
    version: int
    metadata: dict[str, Any]


@dataclass
class _Change:
    """One window's change waiting for its table's next transaction, and, once it ran, its outcome."""
    fleet_id: str
    month: str
    prefix: str
    files: tuple[DataFile, ...]
    metadata: dict[str, str]
    append: bool
    only_if_absent: bool = False
    outcome: bool | BaseException | None = None


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """The table schema for files of `schema`: plain types Delta knows, plus the partition columns.

    Dictionary columns are plain strings to Delta (the encoding stays in the files), timestamps
    are microseconds (Delta's only timestamp; readers cast our millisecond files). A data column
    named like a partition column (features carry `month`) is the partition column.
    """
    fields = []
    for f in schema:
        if f.name in layout.PARTITION_COLUMNS:
            continue
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema([*fields, *(pa.field(c, pa.string()) for c in layout.PARTITION_COLUMNS)])


def storage_options(store: ObjectStore) -> dict[str, str] | None:
    """delta-rs (object_store) options for the store. Holds the secret: never log the result."""
    if isinstance(store, LocalStore):
        return None
    if not isinstance(store, S3Store):
        raise StoreError(f"no Delta Lake support for store {store.url}")
    o = store.options
    opts = {"AWS_REGION": o.region or "us-east-1", "conditional_put": "etag",
            "AWS_EC2_METADATA_DISABLED": "true", "timeout": f"{int(o.read_timeout_s)}s",
            "connect_timeout": f"{int(o.connect_timeout_s)}s"}
    if o.endpoint_url:
        opts["AWS_ENDPOINT_URL"] = o.endpoint_url
        if o.endpoint_url.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    if o.access_key_id and o.secret_access_key:
        opts["AWS_ACCESS_KEY_ID"] = o.access_key_id
        opts["AWS_SECRET_ACCESS_KEY"] = o.secret_access_key
    return opts


def table_uri(store: ObjectStore, table: str) -> str:
    layout.parse_table(table)
    if isinstance(store, LocalStore):
        return str(store.root / table)
    if isinstance(store, S3Store):
        return f"s3://{store.bucket}/{store.prefix}{table}"
    raise StoreError(f"no Delta Lake support for store {store.url}")


class Lake:
    """The Delta tables of one store, as the manifest's owner writes and vacuums them."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._options = storage_options(store)
        self._tables: dict[str, DeltaTable] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._pending: dict[str, list[tuple[_Change, threading.Event]]] = {}  # window changes waiting, by table
        # table -> (version, its live files) after this Lake's last group commit (`_live_at`)
        self._kept: dict[str, tuple[int, dict[tuple[str, str], list[DataFile]]]] = {}

    def __repr__(self) -> str:  # the options hold the S3 secret
        return f"Lake({self.store.url!r})"

    def uri(self, table: str) -> str:
        return table_uri(self.store, table)

    @property
    def storage_options(self) -> dict[str, str] | None:
        return None if self._options is None else dict(self._options)

    @contextmanager
    def locked(self, table: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(table, threading.Lock())
        with lock:
            yield

    # ------------------------------------------------------------------ reading the log
    def open(self, table: str) -> DeltaTable | None:
        """The table at its newest version, or None when it does not exist yet."""
        dt = self._tables.get(table)
        if dt is not None:
            dt.update_incremental()
            return dt
        try:
            dt = DeltaTable(self.uri(table), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read the Delta log of {table} in {self.store.url}: {_brief(e)}") from None
        self._tables[table] = dt
        return dt

    def tables(self) -> list[str]:
        """Every table in the store, found by the first entry of its log."""
        return tables_in(self.store)

    def live_files(self, table: str) -> dict[tuple[str, str], list[DataFile]]:
        """The files the current snapshot names, by (fleet, month)."""
        dt = self.open(table)
        return {} if dt is None else _live(dt, table)

    def window_commits(self, table: str, key: str) -> tuple[dict[tuple[str, str], WindowCommit], int]:
        """The newest commit per (fleet, month) carrying metadata `key`, and how many such commits exist."""
        dt = self.open(table)
        if dt is None:
            return {}, 0
        newest: dict[tuple[str, str], WindowCommit] = {}
        purged: dict[str, int] = {}  # fleet -> version of the newest commit that purged it
        replaced: dict[str, int] = {}  # fleet -> version of its newest snapshot commit
        count = 0
        for entry in dt.history():
            if entry.get(PURGE_KEY):
                fleet = str(entry[PURGE_KEY])
                purged[fleet] = max(purged.get(fleet, -1), int(entry.get("version", -1)))
            if entry.get(SNAPSHOT_KEY):
                fleet = str(entry[SNAPSHOT_KEY])
                replaced[fleet] = max(replaced.get(fleet, -1), int(entry.get("version", -1)))
            version = int(entry.get("version", -1))
            for meta in _window_metadata(entry):
                raw = meta.get(key)
                if raw is None:
                    continue
                count += 1
                record = json.loads(raw) if isinstance(raw, str) else raw
                window = (record["fleet_id"], record["month"])
                if window not in newest or newest[window].version < version:
                    newest[window] = WindowCommit(version, record)
        # An off-boarded fleet's windows were removed on purpose: they are no window of the table.
        newest = {w: c for w, c in newest.items() if c.version > purged.get(w[0], -1)}
        # A snapshot commit replaced the fleet's every earlier window (its own record is kept).
        newest = {w: c for w, c in newest.items() if c.version >= replaced.get(w[0], -1)}
        return newest, count

    # ------------------------------------------------------------------ writing
    def commit_window(self, table: str, file_schema: pa.Schema, fleet_id: str, month: str,
                      files: list[DataFile], metadata: dict[str, str], only_if_absent: bool = False) -> bool:
        """Make `files` the whole content of one window, in one Delta commit.

        Returns False (and commits nothing) when the snapshot already names exactly these files:
        a rerun after a crash between this commit and the manifest's record. With
        `only_if_absent` (the migration), also when the window has any live files at all.
        """
        prefix = _in_window(table, fleet_id, month, files)
        return self._grouped(table, file_schema, _Change(fleet_id, month, prefix, tuple(files), metadata,
                                                         append=False, only_if_absent=only_if_absent))

    def commit_snapshot(self, table: str, file_schema: pa.Schema, fleet_id: str, month: str,
                        files: list[DataFile], metadata: dict[str, str]) -> bool:
        """Make `files` (in window (fleet, month)) the fleet's whole content of a snapshot table, in
        one Delta commit that also removes the fleet's files of every other month.

        A snapshot (the drivers, layout.SNAPSHOT_DATASETS) is no history: each pull replaces it
        whole, and `month` only says when it was taken. False (nothing committed) when the fleet's
        live files already are exactly `files`.
        """
        prefix = _in_window(table, fleet_id, month, files)
        with self.locked(table):
            dt = self.open(table) or self._create(table, file_schema)
            live = [f for (fleet, _m), fs in _live(dt, table).items() if fleet == fleet_id for f in fs]
            if sorted(f.key for f in live) == sorted(f.key for f in files):
                return False
            adds = self._adds(table, fleet_id, month, files, prefix)
            try:
                dt.create_write_transaction(
                    adds, mode="overwrite", schema=dt.schema(), partition_by=list(layout.PARTITION_COLUMNS),
                    partition_filters=[("fleet", "=", fleet_id)],
                    commit_properties=CommitProperties(custom_metadata={**metadata, SNAPSHOT_KEY: fleet_id}))
            except (OSError, DeltaError) as e:
                raise StoreError(f"Delta commit of {prefix} in {self.store.url} failed: {_brief(e)}") from None
            return True

    def append_window(self, table: str, file_schema: pa.Schema, fleet_id: str, month: str,
                      files: list[DataFile], metadata: dict[str, str]) -> bool:
        """Add `files` to one window's live files, in one Delta commit that removes nothing.

        A partial commit of a month that is still landing (partitions.writer): the files hold only
        keys the window does not, so readers of the log still see one row per key. Returns False
        (commits nothing) when every file is already live: a rerun after a crash between this
        commit and the manifest's record.
        """
        prefix = _in_window(table, fleet_id, month, files)
        return self._grouped(table, file_schema, _Change(fleet_id, month, prefix, tuple(files), metadata,
                                                         append=True))

    def _grouped(self, table: str, file_schema: pa.Schema, change: _Change) -> bool:
        """Commit `change` in the table's next Delta transaction, with every other window change
        waiting for the table at the time (a group commit).

        A Delta transaction costs the same with one window or sixteen (delta-rs reads the
        snapshot's every file to commit; 15-25 ms at a few hundred files on this machine, and
        growing with the table), and every fleet's months share the one table per dataset, so
        fleets committing at once queued on its lock, one transaction each. Now the thread that
        gets the lock commits what all of them have put in the queue: each window is still
        replaced (or appended to) whole in one transaction, never split across two, and each
        caller returns once the transaction that holds its window is in the log.
        """
        done = threading.Event()
        with self._guard:
            self._pending.setdefault(table, []).append((change, done))
        with self.locked(table):
            if not done.is_set():
                self._commit_pending(table, file_schema)
        if isinstance(change.outcome, BaseException):
            raise change.outcome
        return bool(change.outcome)

    def _commit_pending(self, table: str, file_schema: pa.Schema) -> None:
        """Under the table's lock: one transaction for the queued changes, one per window (a
        window's later change waits for the next transaction, so each sees the one before)."""
        with self._guard:
            queued = self._pending.get(table, [])
            batch: list[tuple[_Change, threading.Event]] = []
            later: list[tuple[_Change, threading.Event]] = []
            windows: set[tuple[str, str]] = set()
            for item in queued:
                key = (item[0].fleet_id, item[0].month)
                (later if key in windows else batch).append(item)
                windows.add(key)
            self._pending[table] = later
        try:
            dt = self.open(table) or self._create(table, file_schema)
            version = dt.version()
            live = self._live_at(table, dt, version)
            actions: list[AddAction | RemoveAction] = []
            records: list[dict[str, str]] = []
            now_ms = int(time.time() * 1000)
            for change, _done in batch:
                try:
                    acts = self._actions(table, change, live.get((change.fleet_id, change.month), []), now_ms)
                except StoreError as e:  # a file missing from the store fails its window, not the others
                    change.outcome = e
                    continue
                change.outcome = bool(acts)
                if acts:
                    actions += acts
                    records.append(change.metadata)
            if not records:
                self._kept[table] = (version, live)  # nothing to commit: still the snapshot's files
            else:
                # One window: its record as the commit's metadata, as before. Several: each window's
                # record in a list under BATCH_KEY (window_commits reads both).
                metadata = records[0] if len(records) == 1 else {BATCH_KEY: json.dumps(records, sort_keys=True)}
                try:
                    dt.create_write_transaction(actions, mode="append", schema=dt.schema(),
                                                partition_by=list(layout.PARTITION_COLUMNS),
                                                commit_properties=CommitProperties(custom_metadata=metadata))
                except (OSError, DeltaError) as e:  # e.g. a conflicting commit by another writer
                    where = batch[0][0].prefix if len(batch) == 1 else f"{len(records)} windows of {table}"
                    error = StoreError(f"Delta commit of {where} in {self.store.url} failed: {_brief(e)}")
                    for change, _done in batch:
                        if change.outcome is True:
                            change.outcome = error
                else:
                    self._kept[table] = (version + 1, _after(live, [c for c, _d in batch if c.outcome is True]))
        except BaseException as e:  # noqa: BLE001 - every waiting caller raises it
            for change, _done in batch:
                if not isinstance(change.outcome, BaseException):
                    change.outcome = e
        finally:
            for _change, done in batch:
                done.set()

    def _live_at(self, table: str, dt: DeltaTable, version: int) -> dict[tuple[str, str], list[DataFile]]:
        """The live files of `dt` (at `version`): those this Lake's last group commit left, when that
        commit is the log's newest entry, else read from the snapshot.

        Reading them costs O(every file of the table, all fleets) of Python per commit (10% of the
        daemon's Python CPU with 64 fleets committing, docs/scale.md), while a commit changes a few
        windows. Kept as version + 1 of the snapshot the commit was planned on: if the log is there,
        that entry is ours (ours went in at some version after the snapshot's, and no other did),
        so any other writer's commit, or one of this Lake's other kinds (snapshot, purge), moves
        the version past it and the files are read again.
        """
        kept = self._kept.pop(table, None)
        if kept is not None and kept[0] == version:
            return kept[1]
        return _live(dt, table)

    def _actions(self, table: str, change: _Change, live: list[DataFile], now_ms: int) -> list[AddAction | RemoveAction]:
        """The add and remove actions that make one window what `change` says; none when it already is."""
        was = {f.key for f in live}
        if change.append:
            new = [f for f in change.files if f.key not in was]
            return self._adds(table, change.fleet_id, change.month, new, change.prefix) if new else []
        if sorted(was) == sorted(f.key for f in change.files) or (change.only_if_absent and live):
            return []
        keep = {f.key for f in change.files}
        values: dict[str, str | None] = {"fleet": change.fleet_id, "month": change.month}
        acts = self._adds(table, change.fleet_id, change.month, [f for f in change.files if f.key not in was],
                          change.prefix)
        return acts + [RemoveAction(f.key[len(table) + 1:], True, now_ms, f.size, values) for f in live
                       if f.key not in keep]

    def replace_named(self, table: str, file_schema: pa.Schema, fleet_id: str, month: str, files: list[DataFile],
                      metadata: dict[str, str], *, prefix: str) -> bool:
        """Make `files` the live files of the partition whose names start with `prefix`, in one Delta
        commit that keeps the partition's others: the windows that share a month's partition (ISO
        weeks, whose file names lead with their week). False (nothing committed) when they already are."""
        part = layout.partition_path(fleet_id, month)
        for f in files:
            if not f.key.startswith(f"{table}/{part}{prefix}"):
                raise ValueError(f"{f.key} is not a {prefix} file of {table}/{part}")
        with self.locked(table):
            dt = self.open(table) or self._create(table, file_schema)
            live = [f for f in _live(dt, table).get((fleet_id, month), []) if f.key[len(table) + 1 + len(part):]
                    .startswith(prefix)]
            if sorted(f.key for f in live) == sorted(f.key for f in files):
                return False
            was = {f.key for f in live}
            actions = self._adds(table, fleet_id, month, [f for f in files if f.key not in was], f"{table}/{part}")
            now_ms = int(time.time() * 1000)
            values: dict[str, str | None] = {"fleet": fleet_id, "month": month}
            new = {f.key for f in files}
            actions += [RemoveAction(f.key[len(table) + 1:], True, now_ms, f.size, values) for f in live
                        if f.key not in new]
            try:
                dt.create_write_transaction(actions, mode="append", schema=dt.schema(),
                                            partition_by=list(layout.PARTITION_COLUMNS),
                                            commit_properties=CommitProperties(custom_metadata=metadata))
            except (OSError, DeltaError) as e:
                raise StoreError(f"Delta commit of {table}/{part}{prefix} in {self.store.url} failed: {_brief(e)}"
                                 ) from None
            return True

    def _adds(self, table: str, fleet_id: str, month: str, files: list[DataFile],
              where: str) -> list[AddAction | RemoveAction]:
        """The add actions of `files` (in `table`'s window fleet_id/month), once each is in the store."""
        missing = [f.key for f in files if not self.store.exists(f.key)]
        if missing:
            raise StoreError(f"cannot commit {where}: files missing from the store: {', '.join(missing)}")
        now_ms = int(time.time() * 1000)
        return [AddAction(f.key[len(table) + 1:], f.size, {"fleet": fleet_id, "month": month}, now_ms, True,
                          json.dumps({"numRecords": f.rows})) for f in files]

    def purge_fleet(self, table: str, fleet_id: str) -> list[DataFile]:
        """Remove every live file of one fleet from the snapshot, in one commit; the files it named.

        Tables are shared by all fleets (partitioned by fleet and month), so the fleet's partitions
        are removed by an overwrite of its partition with nothing, marked with PURGE_KEY so that a
        rebuild knows its older window records are gone on purpose. Deleting the files themselves
        is the caller's (partitions.offboard), after this commit: no snapshot names them then.
        """
        with self.locked(table):
            dt = self.open(table)
            if dt is None:
                return []
            files = [f for (fleet, _m), fs in _live(dt, table).items() if fleet == fleet_id for f in fs]
            if not files:
                return []
            try:
                dt.create_write_transaction(
                    [], mode="overwrite", schema=dt.schema(), partition_by=list(layout.PARTITION_COLUMNS),
                    partition_filters=[("fleet", "=", fleet_id)],
                    commit_properties=CommitProperties(custom_metadata={PURGE_KEY: fleet_id}))
            except (OSError, DeltaError) as e:
                raise StoreError(f"Delta purge of fleet {fleet_id} from {table} in {self.store.url} failed: "
                                 f"{_brief(e)}") from None
            return sorted(files, key=lambda f: f.key)

    def _create(self, table: str, file_schema: pa.Schema) -> DeltaTable:
        try:
            dt = DeltaTable.create(self.uri(table), delta_schema(file_schema), mode="ignore",
                                   partition_by=list(layout.PARTITION_COLUMNS), configuration=TABLE_CONFIG,
                                   storage_options=self.storage_options)
        except (OSError, DeltaError) as e:
            raise StoreError(f"cannot create Delta table {table} in {self.store.url}: {_brief(e)}") from None
        self._tables[table] = dt
        return dt

    # ------------------------------------------------------------------ vacuum
    def vacuum(self, table: str, retention_hours: float, dry_run: bool) -> list[DataFile]:
        """Delete files of `table` the current snapshot does not name and that are older than the retention.

        Covers superseded files (removed by a commit at least `retention_hours` ago) and orphans
        of crashed writes (never committed, last modified that long ago). Holds the table's lock,
        so no commit of this process runs meanwhile.
        """
        with self.locked(table):
            dt = self.open(table)
            if dt is None:
                return []
            live = {f.key for files in self.live_files(table).values() for f in files}
            sizes = {o.key: o.size for o in self.store.list(f"{table}/") if "/_delta_log/" not in o.key}
            try:
                # delta-rs plans (full mode: tombstones and untracked files, by age); we delete, so
                # that our own in-flight temp files (partitions.store) are never its business.
                paths = dt.vacuum(retention_hours=math.ceil(retention_hours), dry_run=True,
                                  enforce_retention_duration=False, full=True)
            except (OSError, DeltaError) as e:
                raise StoreError(f"vacuum of {table} in {self.store.url} failed: {_brief(e)}") from None
            out = []
            for p in paths:
                key = _store_key(self.uri(table), table, p)
                if key.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                    continue
                if key in live:  # delta-rs never proposes these; refuse loudly if it ever did
                    raise StoreError(f"vacuum proposed a live file: {key}")
                out.append(DataFile(key, sizes.get(key, 0), 0))
            if not dry_run:
                for f in out:
                    self.store.delete(f.key)
            return sorted(out, key=lambda f: f.key)


_LAKES: dict[tuple[str, str | None], Lake] = {}
_LAKES_GUARD = threading.Lock()


def lake_for(store: ObjectStore) -> Lake:
    """One Lake (open tables, locks) per store URL in this process.

    By URL, not by store object: the executor, the writer and the vacuum job each open the store
    themselves, and must still share the per-table locks.
    """
    options = getattr(store, "options", None)
    key = (store.url, getattr(options, "endpoint_url", None))
    with _LAKES_GUARD:
        lake = _LAKES.get(key)
        if lake is None:
            lake = _LAKES[key] = Lake(store)
        return lake


def _in_window(table: str, fleet_id: str, month: str, files: list[DataFile]) -> str:
    """The window's path prefix in `table`, once every file is under it."""
    prefix = f"{table}/{layout.partition_path(fleet_id, month)}"
    for f in files:
        if not f.key.startswith(prefix):
            raise ValueError(f"{f.key} is not in window {prefix}")
    return prefix


def _live(dt: DeltaTable, table: str) -> dict[tuple[str, str], list[DataFile]]:
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    rows = actions.get("num_records") or [None] * len(actions["path"])
    out: dict[tuple[str, str], list[DataFile]] = {}
    for path, size, fleet, month, n in zip(actions["path"], actions["size_bytes"], actions["partition.fleet"],
                                           actions["partition.month"], rows):
        out.setdefault((fleet, month), []).append(DataFile(f"{table}/{path}", int(size), int(n or 0)))
    for files in out.values():
        files.sort(key=lambda f: f.key)
    return out


def _after(live: dict[tuple[str, str], list[DataFile]],
           changes: list[_Change]) -> dict[tuple[str, str], list[DataFile]]:
    """`live` (as `_live` reads it) once `changes` are committed: appended files added, a replaced
    window exactly its files. A new dict: `live` is the snapshot's until the commit is in."""
    out = dict(live)
    for c in changes:
        key = (c.fleet_id, c.month)
        files = {f.key: f for f in out.get(key, [])} if c.append else {}
        files.update({f.key: f for f in c.files if f.key not in files})
        if files:
            out[key] = sorted(files.values(), key=lambda f: f.key)
        else:
            out.pop(key, None)
    return out


def _window_metadata(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The metadata of each window a log entry committed: the entry's own, or a group commit's list."""
    batch = entry.get(BATCH_KEY)
    if batch is None:
        return [entry]
    return list(json.loads(batch) if isinstance(batch, str) else batch)


def _store_key(uri: str, table: str, path: str) -> str:
    """A vacuum path (relative to the table, or a full URI) as a store key."""
    for base in (uri.rstrip("/") + "/", "file://" + uri.rstrip("/") + "/"):
        if path.startswith(base):
            path = path[len(base):]
    return f"{table}/{path.lstrip('/')}"


def _brief(e: BaseException) -> str:
    """delta-rs errors can quote whole responses; keep the first line only."""
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
