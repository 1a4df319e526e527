"""Writing the manifest: the one writer process's `Manifest`, which extends the reader.

Opening it takes the file's writer lock, creates the file aside when there is none, checks its
integrity (never writing into a damaged file), and migrates its schema in one transaction; a
file from a newer fleetlake is refused rather than touched (`partitions.manifest.file`,
`partitions.manifest.migrations`).

Readers that must never wait for the writer (the daemon's API while pulls commit) take
`Manifest.reading()`: a `ManifestReader` on its own DuckDB connection to the same database.
DuckDB lets one process hold many connections; each reads the last committed state (MVCC)
without the writer's lock, so a long write transaction delays no read.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import duckdb

from common import names
from common.errors import CommitConflict, ManifestError, ManifestLocked, SchemaVersionError
from common.states import FleetStatus
from partitions.manifest.file import FileLock, check_copy, damaged, fsync_dir, owner_only_files, private, verify
from partitions.manifest.migrations import MIGRATIONS, SCHEMA_VERSION
from partitions.manifest.reader import ManifestReader
from partitions.manifest.records import (
    _RAW_COLS,
    _RUN_COLS,
    FlowRun,
    Offboarding,
    RawPartition,
    _db_time,
    _now,
    _one,
    _run_row,
)


class Manifest(ManifestReader):
    """The manifest file, opened to write. Use as a context manager; `transaction()` groups writes atomically."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        # One DuckDB connection is not safe for concurrent use; pull threads share the manifest.
        self._lock = threading.RLock()
        self._file_lock = FileLock(self.path)
        self._read_root: duckdb.DuckDBPyConnection | None = None
        self._read_guard = threading.Lock()
        if not read_only:
            owner_only_files()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file_lock.take()
        if not read_only and not self.path.exists():
            try:
                self._create()
            except BaseException:
                self._file_lock.release()
                raise
        try:
            conn = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            self._file_lock.release()
            if "lock" in str(e).lower():
                raise ManifestLocked(f"manifest {self.path} is in use by another process "
                                     f"({self._file_lock.holder()}); fleetlake allows one writer at a time") from None
            raise damaged(self.path, e) from None
        except duckdb.Error as e:
            self._file_lock.release()
            raise damaged(self.path, e) from None
        super().__init__(conn, self.path, self._lock)
        if not read_only:
            private(self.path)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            verify(conn)  # before migrating: never write into a damaged file
            self._migrate()
        except duckdb.Error as e:
            self.close()
            raise damaged(self.path, e) from None
        except Exception:
            self.close()
            raise
        # The root of read views: only `reading()` uses it, under its own small lock.
        self._read_root = conn.cursor()

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection, for maintenance and tests; fleetlake's code goes through the methods."""
        return self._conn

    @contextmanager
    def reading(self) -> Iterator[ManifestReader]:
        """A read-only view of the manifest on its own connection, which never waits for this
        Manifest's writers: it sees what was committed when each statement starts. Brief: a
        connection per call."""
        with self._read_guard:
            if self._read_root is None:
                raise ManifestError(f"manifest {self.path} is closed")
            cursor = self._read_root.cursor()
        try:
            yield ManifestReader(cursor, self.path)
        finally:
            cursor.close()

    # ------------------------------------------------------------------ lifecycle
    def _create(self) -> None:
        """Make a new manifest under a temporary name, then rename it into place.

        A process killed while DuckDB writes a brand-new file leaves a file DuckDB cannot open;
        creating it aside means the real path only ever holds a complete, migrated manifest.
        """
        for stale in self.path.parent.glob(self.path.name + ".new-*"):
            stale.unlink(missing_ok=True)  # an earlier creation that died (we hold the lock)
        tmp = self.path.with_name(f"{self.path.name}.new-{os.getpid()}")
        conn = duckdb.connect(str(tmp))
        try:
            _migrate(conn, tmp, read_only=False)
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
        private(tmp)
        os.replace(tmp, self.path)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)

    def close(self) -> None:
        # Under the lock: a scheduler job may be mid-query when the daemon shuts down.
        with self._lock:
            if self._read_root is not None:
                with self._read_guard:
                    self._read_root.close()
                    self._read_root = None
            conn = getattr(self, "_conn", None)
            if conn is not None:
                conn.close()
                self._conn = None  # type: ignore[assignment]  # closed: no use after this
        self._file_lock.release()

    def check_file(self) -> str | None:
        """What is wrong with the file on disk, or None: for /readyz of the process that holds it.

        This process's DuckDB serves most reads from memory, so damage to the file would only show
        at the next start. A copy taken while no statement runs (DuckDB writes the file only inside
        one) is opened and read in full instead; the file itself is never opened twice.
        """
        return check_copy(self.path, self._lock)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._lock:
            _migrate(self._conn, self.path, self.read_only)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._conn.execute("BEGIN TRANSACTION")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _run(self, sql: str, params: list[Any]) -> None:
        with self._lock:
            self._conn.execute(sql, params)

    # ------------------------------------------------------------------ fleets
    def upsert_fleet(self, fleet_id: str, tsp: str, status: FleetStatus, consent_at: datetime | None = None,
                     history_start: datetime | None = None, error: str | None = None) -> None:
        names.fleet_id(fleet_id)
        now = _now()
        self._run("""
            INSERT INTO fleets VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (fleet_id) DO UPDATE SET tsp = excluded.tsp, status = excluded.status,
                consent_at = coalesce(excluded.consent_at, fleets.consent_at),
                history_start = coalesce(excluded.history_start, fleets.history_start),
                error = excluded.error, updated_at = excluded.updated_at
            """, [fleet_id, tsp, FleetStatus(status).value, _db_time(consent_at), _db_time(history_start), error, now, now])

    # ------------------------------------------------------------------ raw partitions
    def commit_raw(self, p: RawPartition) -> None:
        """Record a new version of a window; refused unless it follows the current one."""
        self.commit_raws([p])

    def commit_raws(self, parts: list[RawPartition]) -> None:
        """Record new versions of several windows in one transaction, each refused unless it follows
        its current one (none is recorded then).

        A writer's commit records every window it published at once: DuckDB spends about 3 ms of
        CPU on each INSERT OR REPLACE statement, whatever its rows, and 0.5 ms on each lookup, so
        one lookup of the windows' versions and one statement for all rows cost what a single
        window's record did (a small fleet's refresh records about twelve).
        """
        if not parts:
            return
        if len({(p.fleet_id, p.dataset, p.month) for p in parts}) != len(parts):
            raise ValueError("commit_raws was given a window twice")
        fleets = sorted({p.fleet_id for p in parts})
        months = sorted({p.month for p in parts})
        with self.transaction() as c:
            held = {(r[0], r[1], r[2]): int(r[3]) for r in c.execute(
                "SELECT fleet_id, dataset, month, seq FROM raw_partitions "
                "WHERE list_contains(?::VARCHAR[], fleet_id) AND list_contains(?::VARCHAR[], month)",
                [fleets, months]).fetchall()}
            for p in parts:
                cur = held.get((p.fleet_id, p.dataset, p.month), 0)
                if cur != p.seq - 1:
                    raise CommitConflict(f"{p.dataset} {p.fleet_id} {p.month}: commit {p.seq} does not follow "
                                         f"committed version {cur}")
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(parts))
            c.execute(f"INSERT OR REPLACE INTO raw_partitions ({_RAW_COLS}) VALUES {values}",
                      [v for p in parts for v in (p.fleet_id, p.dataset, p.month, p.seq, list(p.files), p.rows,
                                                  p.bytes, p.fingerprint, _db_time(p.committed_at), p.pull_id)])

    def commit_snapshot(self, p: RawPartition) -> None:
        """Record a new version of a fleet's snapshot (layout.SNAPSHOT_DATASETS): it replaces the
        fleet's every window of the dataset, whatever month each was taken in; refused unless it
        follows the newest of them."""
        with self.transaction() as c:
            cur = c.execute("SELECT max(seq) FROM raw_partitions WHERE fleet_id = ? AND dataset = ?",
                            [p.fleet_id, p.dataset]).fetchone()
            if ((cur[0] if cur else None) or 0) != p.seq - 1:
                raise CommitConflict(f"{p.dataset} {p.fleet_id}: snapshot {p.seq} does not follow "
                                     f"committed version {cur[0] if cur else 0}")
            c.execute("DELETE FROM raw_partitions WHERE fleet_id = ? AND dataset = ?", [p.fleet_id, p.dataset])
            c.execute(f"INSERT INTO raw_partitions ({_RAW_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [p.fleet_id, p.dataset, p.month, p.seq, list(p.files), p.rows, p.bytes, p.fingerprint,
                       _db_time(p.committed_at), p.pull_id])

    def restore_raw(self, partitions: list[RawPartition]) -> None:
        """Used by rebuild: set windows as the store's markers say, whatever was there before."""
        with self.transaction() as c:
            for p in partitions:
                c.execute(f"INSERT OR REPLACE INTO raw_partitions ({_RAW_COLS}) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [p.fleet_id, p.dataset, p.month, p.seq, list(p.files), p.rows, p.bytes, p.fingerprint,
                           _db_time(p.committed_at), p.pull_id])

    def restore_runs(self, runs: list[FlowRun]) -> int:
        """Used by rebuild: add succeeded runs read from the feature tables' logs; runs already known stay."""
        added = 0
        with self.transaction() as c:
            for r in runs:
                if c.execute("SELECT 1 FROM flow_runs WHERE run_id = ?", [r.run_id]).fetchall():
                    continue
                c.execute(f"INSERT INTO flow_runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          _run_row(r))
                added += 1
        return added

    # ------------------------------------------------------------------ credentials (encrypted blobs), consents
    def save_credentials(self, fleet_id: str, sealed: bytes) -> None:
        names.fleet_id(fleet_id)
        self._run("INSERT OR REPLACE INTO credentials VALUES (?, ?, ?)", [fleet_id, sealed, _now()])

    def use_consent_nonce(self, nonce: str, tsp: str, fleet_id: str, expires_at: datetime) -> bool:
        """Record a consent state's nonce as used; False if it was used before (a replay).

        Nonces of states expired for a day are dropped: their states are refused on expiry alone.
        """
        with self.transaction() as c:
            c.execute("DELETE FROM consent_nonces WHERE expires_at < ?", [_now() - timedelta(days=1)])
            if c.execute("SELECT 1 FROM consent_nonces WHERE nonce = ?", [nonce]).fetchall():
                return False
            c.execute("INSERT INTO consent_nonces VALUES (?, ?, ?, ?, ?)",
                      [nonce, tsp, fleet_id, _db_time(expires_at), _now()])
        return True

    # ------------------------------------------------------------------ off-boarding
    def purge_fleet(self, fleet_id: str, audit: Offboarding) -> dict[str, int]:
        """Delete every row of `fleet_id` from every table and record `audit`, in one transaction.

        Returns the rows deleted per table. The fleet row goes last in the same transaction, so an
        off-boarding cut short before this point finds the fleet again and can be run again.
        """
        names.fleet_id(fleet_id)
        removed: dict[str, int] = {}
        with self.transaction() as c:
            for table in self.fleet_tables():  # names from the catalog, not from input
                n = _one(c.execute(f'SELECT count(*) FROM "{table}" WHERE fleet_id = ?', [fleet_id]))
                c.execute(f'DELETE FROM "{table}" WHERE fleet_id = ?', [fleet_id])
                removed[table] = int(n or 0)
            c.execute("INSERT INTO offboardings VALUES (?, ?, ?, ?, ?)",
                      [audit.fleet_id, audit.tsp, audit.actor, _db_time(audit.at),
                       json.dumps({**audit.removed, "manifest_rows": removed}, sort_keys=True)])
        return removed

    def restore_offboarding(self, audit: Offboarding) -> None:
        """Used by rebuild: an audit record read from the store."""
        self._run("INSERT INTO offboardings VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  [audit.fleet_id, audit.tsp, audit.actor, _db_time(audit.at), json.dumps(audit.removed, sort_keys=True)])

    # ------------------------------------------------------------------ flows and their runs
    def record_flow_schema(self, flow: str, version: int, schema_fp: str) -> None:
        self._run("INSERT INTO flow_schemas VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  [flow, version, schema_fp, _now()])

    def record_run(self, run: FlowRun) -> None:
        self._run(f"INSERT INTO flow_runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _run_row(run))

    def supersede_runs(self, fleet_id: str, flows: list[tuple[str, int]], month: str | None,
                       requested_by: str) -> int:
        """Set aside the succeeded runs of one fleet's windows of `flows` (in `month`, or every month), so
        the planner plans those windows again though nothing changed (a re-run on request); returns how
        many runs were set aside. The runs stay as recorded: the marker says when and who asked."""
        names.fleet_id(fleet_id)
        if month is not None:
            names.month(month)
        keys = [f"{flow}@{version}" for flow, version in flows]
        with self._lock:
            return int(_one(self._conn.execute("""
                INSERT INTO superseded_runs (run_id, fleet_id, superseded_at, requested_by)
                SELECT f.run_id, f.fleet_id, ?, ? FROM flow_runs f
                WHERE f.fleet_id = ? AND f.status = 'succeeded' AND (?::VARCHAR IS NULL OR f.month = ?::VARCHAR)
                  AND list_contains(?::VARCHAR[], f.flow || '@' || f.version)
                  AND NOT EXISTS (SELECT 1 FROM superseded_runs s WHERE s.run_id = f.run_id)""",
                [_now(), requested_by, fleet_id, month, month, keys])) or 0)

    def rekey_code_fingerprints(self, changes: list[tuple[str, int, str, str]]) -> int:
        """Re-key runs of (flow, version) whose code fingerprint is `old` to `new`; returns how many."""
        n = 0
        with self.transaction() as c:
            for flow, version, old, new in changes:
                n += _one(c.execute("UPDATE flow_runs SET code_fp = ? WHERE flow = ? AND version = ? AND code_fp = ?",
                                    [new, flow, version, old]))
        return n

    # ------------------------------------------------------------------ pull checkpoints, months, readiness
    def complete_slice(self, fleet_id: str, stream: str, slice_key: str, dataset: str, rows: int,
                       detail: str | None = None) -> None:
        """A pull slice of `dataset` is committed (and ended long enough ago not to be pulled again)."""
        self._run("INSERT OR REPLACE INTO pull_checkpoints (fleet_id, stream, slice_key, dataset, completed_at, rows, "
                  "detail) VALUES (?, ?, ?, ?, ?, ?, ?)", [fleet_id, stream, slice_key, names.dataset(dataset), _now(),
                                                          rows, detail])

    def record_slices(self, fleet_id: str, slices: list[tuple[str, str, str, int, bool, str | None]]) -> None:
        """Committed pull slices (stream, slice key, dataset, rows, complete, digest) in one transaction.

        A complete slice is checkpointed (never pulled again). One still in its lookback keeps its
        pages' digests (ingest/pull/lookback.py) for the next refresh, or, without them, loses any
        it had: its pages are read again next time.

        At most three statements whatever the number of slices: a statement on the manifest's file
        costs milliseconds (its WAL written under the one lock every pull shares; 3.7 ms of CPU and
        17 ms of wall time per INSERT under load, against 4.4 ms for 32 rows in one), and a commit
        records up to `commit_every` slices. A key given twice keeps its last entry, as one call
        each would.
        """
        last = {(stream, key): (dataset, rows, complete, digest) for stream, key, dataset, rows, complete, digest
                in slices}
        if not last:
            return
        now = _now()
        done = [(s, k, d, r) for (s, k), (d, r, complete, _) in last.items() if complete]
        kept = [(s, k, digest, r) for (s, k), (_, r, complete, digest) in last.items() if not complete and digest]
        gone = [(s, k) for (s, k), (_, _, complete, digest) in last.items() if complete or digest is None]
        with self.transaction() as c:
            if done:
                c.execute("INSERT OR REPLACE INTO pull_checkpoints (fleet_id, stream, slice_key, dataset, completed_at, "
                          "rows, detail) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, NULL)"] * len(done)),
                          [v for s, k, d, r in done for v in (fleet_id, s, k, names.dataset(d), now, r)])
            if gone:
                c.execute("DELETE FROM lookback_pages WHERE fleet_id = ? AND (stream, slice_key) IN (VALUES "
                          + ", ".join(["(?, ?)"] * len(gone)) + ")", [fleet_id, *(v for pair in gone for v in pair)])
            if kept:
                c.execute("INSERT OR REPLACE INTO lookback_pages VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(kept)),
                          [v for s, k, digest, r in kept for v in (fleet_id, s, k, digest, r, now)])

    def record_month_pulled(self, fleet_id: str, month: str) -> None:
        """Every slice overlapping `month` is committed; the first time is kept."""
        self._run("INSERT INTO fleet_months VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                  [names.fleet_id(fleet_id), names.month(month), _now()])

    def record_readiness(self, fleet_id: str, threshold: int, first_month: str, last_month: str,
                         delivered: bool) -> bool:
        """Remember that `threshold` fired; False if it had fired before (then nothing changes)."""
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM readiness_fired WHERE fleet_id = ? AND threshold = ?",
                         [fleet_id, threshold]).fetchall():
                return False
            c.execute("INSERT INTO readiness_fired VALUES (?, ?, ?, ?, ?, ?)",
                      [fleet_id, threshold, first_month, last_month, _now(), delivered])
        return True

    def readiness_delivered(self, fleet_id: str, threshold: int) -> None:
        self._run("UPDATE readiness_fired SET delivered = true WHERE fleet_id = ? AND threshold = ?",
                  [fleet_id, threshold])

    def restore_month_pulled(self, fleet_id: str, month: str, pulled_at: datetime) -> None:
        """Used by rebuild: a pulled month read from the store, with the time it was first pulled."""
        self._run("INSERT INTO fleet_months VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                  [names.fleet_id(fleet_id), names.month(month), _db_time(pulled_at)])

    def restore_readiness(self, fleet_id: str, threshold: int, first_month: str, last_month: str,
                          fired_at: datetime, delivered: bool) -> None:
        """Used by rebuild: a fired threshold read from the store; it is never fired again."""
        self._run("INSERT INTO readiness_fired VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fleet_id, threshold) "
                  "DO UPDATE SET delivered = readiness_fired.delivered OR excluded.delivered",
                  [names.fleet_id(fleet_id), int(threshold), names.month(first_month), names.month(last_month),
                   _db_time(fired_at), bool(delivered)])

    # ------------------------------------------------------------------ a fresh file
    def rewrite(self, credentials: dict[str, bytes] | None = None) -> None:
        """Copy the manifest into a fresh file, `credentials` (fleet -> sealed blob) replacing those
        fleets' stored blobs on the way, and swap it in for this one.

        DuckDB does not overwrite deleted or updated rows: their bytes stay in free blocks of the file
        until a block is reused. Blobs re-sealed in place would leave the old ones readable there; a
        fresh file holds only the live rows, and the old file is gone once this returns. The manifest's
        lock is held all along. Run it with no read view open (it runs at start-up).
        """
        if self.read_only:
            raise ManifestError(f"manifest {self.path} is open read-only; it cannot be rewritten")
        fresh = self.path.with_name(f"{self.path.name}.fresh-{os.getpid()}")
        with self._lock, self._read_guard:
            for leftover in (fresh, Path(f"{fresh}.wal"), Path(f"{fresh}.lock")):
                leftover.unlink(missing_ok=True)
            try:
                Manifest(fresh).close()  # the schema, by the same migrations
                Path(f"{fresh}.lock").unlink(missing_ok=True)
                self._copy_into(fresh, credentials or {})
                private(fresh)
            except BaseException:
                for leftover in (fresh, Path(f"{fresh}.wal"), Path(f"{fresh}.lock")):
                    leftover.unlink(missing_ok=True)
                raise
            if self._read_root is not None:
                self._read_root.close()
            self._conn.close()  # checkpoints: the old WAL is folded in and removed
            try:
                os.replace(fresh, self.path)
                Path(f"{self.path}.wal").unlink(missing_ok=True)  # never replayed into the fresh file
                fsync_dir(self.path.parent)
            finally:
                self._conn = duckdb.connect(str(self.path))
                self._conn.execute("SET TimeZone = 'UTC'")
                self._read_root = self._conn.cursor()
        private(self.path)

    def _copy_into(self, fresh: Path, credentials: dict[str, bytes]) -> None:
        c = self._conn
        c.execute("CHECKPOINT")
        source = _one(c.execute("SELECT current_database()"))
        c.execute(f"ATTACH '{str(fresh).replace(chr(39), chr(39) * 2)}' AS fleetlake_fresh")
        in_tx = False
        try:
            tables = [r[0] for r in c.execute("SELECT table_name FROM information_schema.tables WHERE "
                                              "table_catalog = ? AND table_schema = 'main' ORDER BY table_name",
                                              [source]).fetchall()]
            c.execute("BEGIN TRANSACTION")
            in_tx = True
            c.execute("DELETE FROM fleetlake_fresh.main.schema_version")  # the source's history, not today's
            for table in tables:  # names from the catalog, not from input
                if table == "credentials":
                    continue
                c.execute(f'INSERT INTO fleetlake_fresh.main."{table}" BY NAME SELECT * FROM "{source}".main."{table}"')
            for fleet_id, sealed, updated_at in c.execute("SELECT fleet_id, sealed, updated_at FROM "
                                                          f'"{source}".main.credentials').fetchall():
                if fleet_id in credentials:
                    sealed, updated_at = credentials[fleet_id], _now()
                c.execute("INSERT INTO fleetlake_fresh.main.credentials VALUES (?, ?, ?)",
                          [fleet_id, sealed, updated_at])
            c.execute("COMMIT")
            in_tx = False
            c.execute("CHECKPOINT fleetlake_fresh")
        except BaseException:
            if in_tx:
                c.execute("ROLLBACK")
            raise
        finally:
            c.execute("DETACH fleetlake_fresh")


def _migrate(c: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
    has = _one(c.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"))
    current = (_one(c.execute("SELECT max(version) FROM schema_version")) if has else 0) or 0
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(f"manifest {path} has schema version {current}, newer than this "
                                 f"fleetlake understands ({SCHEMA_VERSION}); upgrade fleetlake")
    if current == SCHEMA_VERSION:
        return
    if read_only:
        raise ManifestError(f"manifest {path} needs migrating to version {SCHEMA_VERSION}; open it once read-write")
    c.execute("BEGIN TRANSACTION")
    try:
        c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)")
        for version, sql in MIGRATIONS:
            if version > current:
                c.execute(sql)
                c.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")


T = TypeVar("T")


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """The manifest's writer lock alone, without opening (or creating) the file."""
    lock = FileLock(Path(path))
    lock.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    lock.take()
    try:
        yield
    finally:
        lock.release()


def replace_manifest(path: Path, fill: Callable[[Manifest], T]) -> tuple[T, Path | None]:
    """Build a new manifest with `fill`, then swap it in for `path` atomically.

    The file it replaces, damaged or not, is kept as `<path>.damaged-<UTC time>` (with its WAL,
    which must not be replayed into the new file) and returned. Holds the manifest's lock all
    along, so no daemon opens either file half-way; if `fill` fails, `path` is untouched.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)  # only the lock: the damaged file is never opened
    lock.take()
    new = path.with_name(f"{path.name}.rebuild-{os.getpid()}")
    try:
        for leftover in (new, Path(f"{new}.wal")):
            leftover.unlink(missing_ok=True)
        with Manifest(new) as m:
            result = fill(m)
            m.conn.execute("CHECKPOINT")
        aside = None
        if path.exists():
            aside = path.with_name(f"{path.name}.damaged-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
            os.link(path, aside)  # the damaged file stays reachable under its new name
            wal = Path(f"{path}.wal")
            if wal.exists():
                os.replace(wal, f"{aside}.wal")
        os.replace(new, path)  # the one atomic step: `path` is the old file or the new one, never neither
        fsync_dir(path.parent)
        return result, aside
    finally:
        for leftover in (new, Path(f"{new}.wal"), Path(f"{new}.lock")):
            leftover.unlink(missing_ok=True)
        lock.release()
