"""The DuckDB manifest: fleetlake's memory of what it pulled and computed.

All times are stored as TIMESTAMP in UTC (DuckDB hands TIMESTAMPTZ to Python only through
pytz, which fleetlake does not need otherwise) and come back timezone-aware.

One writer process at a time. Besides DuckDB's own file lock, the writer holds an advisory lock
on `<manifest>.lock`, which records who holds it, so a second process gets an error naming the
holder instead of DuckDB's generic one. The schema is versioned; migrations run in a transaction
at open, and a file from a newer fleetlake is refused rather than touched.

A damaged file (truncated, overwritten, empty) is found at open, by reading every column of
every table so that DuckDB checks each block's checksum, and is never written into: the one
message says to run `fleetlake manifest rebuild`, which builds a new file from the store and swaps
it in atomically (`replace_manifest`), keeping the damaged one aside. A running daemon checks a
copy of its own file for /readyz (`Manifest.check_file`). The file and its lock are 0600: they
hold encrypted credentials and the fleet list.

Readers that must never wait for the writer (the daemon's API while pulls commit) take
`Manifest.reading()`: a view on its own DuckDB connection to the same database. DuckDB lets one
process hold many connections; each reads the last committed state (MVCC) without the writer's
lock, so a long write transaction delays no read.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO, TypeVar

import duckdb

from common import names
from common.errors import CommitConflict, ManifestDamaged, ManifestError, ManifestLocked, SchemaVersionError
from common.states import FleetStatus, RunStatus

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
    CREATE TABLE fleets (
        fleet_id      VARCHAR PRIMARY KEY,
        tsp           VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,          -- consented | backfilling | active | revoked | failed
        consent_at    TIMESTAMP,
        history_start TIMESTAMP,
        error         VARCHAR,
        created_at    TIMESTAMP NOT NULL,
        updated_at    TIMESTAMP NOT NULL
    );
    CREATE TABLE raw_partitions (
        fleet_id     VARCHAR NOT NULL,
        dataset      VARCHAR NOT NULL,
        month        VARCHAR NOT NULL,
        seq          INTEGER NOT NULL,           -- commit number of this window, from 1
        files        VARCHAR[] NOT NULL,
        rows         BIGINT NOT NULL,
        bytes        BIGINT NOT NULL,
        fingerprint  VARCHAR NOT NULL,
        committed_at TIMESTAMP NOT NULL,
        pull_id      VARCHAR,
        PRIMARY KEY (fleet_id, dataset, month)
    );
    CREATE TABLE pull_checkpoints (
        fleet_id     VARCHAR NOT NULL,
        stream       VARCHAR NOT NULL,
        window_key   VARCHAR NOT NULL,
        completed_at TIMESTAMP NOT NULL,
        rows         BIGINT NOT NULL,
        detail       VARCHAR,
        PRIMARY KEY (fleet_id, stream, window_key)
    );
    CREATE TABLE flow_runs (
        run_id      VARCHAR PRIMARY KEY,
        flow        VARCHAR NOT NULL,
        version     INTEGER NOT NULL,
        code_fp     VARCHAR NOT NULL,
        fleet_id    VARCHAR NOT NULL,
        month       VARCHAR NOT NULL,
        input_fp    VARCHAR NOT NULL,
        status      VARCHAR NOT NULL,            -- running | succeeded | failed
        outputs     VARCHAR[],
        stats       JSON,
        error       VARCHAR,
        started_at  TIMESTAMP NOT NULL,
        finished_at TIMESTAMP
    );
    CREATE INDEX flow_runs_window ON flow_runs (flow, version, fleet_id, month);
    """),
    (2, """
    CREATE TABLE credentials (
        fleet_id   VARCHAR PRIMARY KEY,
        sealed     BLOB NOT NULL,               -- Fernet-encrypted token set, never plain
        updated_at TIMESTAMP NOT NULL
    );
    """),
    (3, """
    CREATE TABLE flow_schemas (
        flow        VARCHAR NOT NULL,
        version     INTEGER NOT NULL,
        schema_fp   VARCHAR NOT NULL,            -- an output schema is fixed for a (flow, version)
        first_seen  TIMESTAMP NOT NULL,
        PRIMARY KEY (flow, version)
    );
    """),
    (4, """
    CREATE TABLE consent_nonces (
        nonce      VARCHAR PRIMARY KEY,          -- from a used OAuth state: a second use is refused
        tsp        VARCHAR NOT NULL,
        fleet_id   VARCHAR NOT NULL,
        expires_at TIMESTAMP NOT NULL,           -- the state's own expiry: after it, the state is refused anyway
        used_at    TIMESTAMP NOT NULL
    );
    """),
    (5, """
    CREATE TABLE fleet_months (
        fleet_id  VARCHAR NOT NULL,
        month     VARCHAR NOT NULL,
        pulled_at TIMESTAMP NOT NULL,           -- first time every slice overlapping the month was committed
        PRIMARY KEY (fleet_id, month)
    );
    CREATE TABLE readiness_fired (
        fleet_id    VARCHAR NOT NULL,
        threshold   INTEGER NOT NULL,           -- the latest N complete months had features
        first_month VARCHAR NOT NULL,
        last_month  VARCHAR NOT NULL,
        fired_at    TIMESTAMP NOT NULL,
        delivered   BOOLEAN NOT NULL,           -- the webhook answered 2xx (it is never sent twice)
        PRIMARY KEY (fleet_id, threshold)
    );
    """),
    (6, """
    CREATE TABLE offboardings (
        fleet_id   VARCHAR NOT NULL,             -- the one trace an off-boarded fleet leaves: the audit
        tsp        VARCHAR NOT NULL,
        actor      VARCHAR NOT NULL,             -- the operator (CLI) or 'api-token'
        done_at    TIMESTAMP NOT NULL,
        removed    JSON NOT NULL,                -- counts and keys of what was removed, never data
        PRIMARY KEY (fleet_id, done_at)
    );
    """),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass(frozen=True)
class RawPartition:
    fleet_id: str
    dataset: str
    month: str
    seq: int
    files: tuple[str, ...]
    rows: int
    bytes: int
    fingerprint: str
    committed_at: datetime
    pull_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "dataset": self.dataset, "month": self.month, "seq": self.seq,
                "files": list(self.files), "rows": self.rows, "bytes": self.bytes, "fingerprint": self.fingerprint,
                "committed_at": self.committed_at.isoformat(), "pull_id": self.pull_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RawPartition:
        return cls(names.fleet_id(d["fleet_id"]), names.dataset(d["dataset"]), names.month(d["month"]),
                   int(d["seq"]), tuple(str(f) for f in d["files"]), int(d["rows"]), int(d["bytes"]),
                   str(d["fingerprint"]), datetime.fromisoformat(d["committed_at"]), d.get("pull_id"))


@dataclass(frozen=True)
class Fleet:
    fleet_id: str
    tsp: str
    status: FleetStatus
    consent_at: datetime | None
    history_start: datetime | None
    error: str | None


@dataclass(frozen=True)
class FlowRun:
    """One run of a feature window: (flow, version, code, fleet, month, inputs) -> outputs."""
    run_id: str
    flow: str
    version: int
    code_fp: str
    fleet_id: str
    month: str
    input_fp: str
    status: RunStatus
    outputs: tuple[str, ...]
    stats: dict[str, Any] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    @property
    def window(self) -> tuple[str, int, str]:
        """(flow, version, month): the feature window of one fleet this run computed."""
        return self.flow, self.version, self.month


@dataclass(frozen=True)
class Offboarding:
    """The audit record of an off-boarded fleet: who, when, and what was removed (counts, keys; no data)."""
    fleet_id: str
    tsp: str
    actor: str
    at: datetime
    removed: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "tsp": self.tsp, "actor": self.actor, "at": self.at.isoformat(),
                "removed": self.removed}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Offboarding:
        return cls(names.fleet_id(d["fleet_id"]), str(d["tsp"]), str(d["actor"]), datetime.fromisoformat(d["at"]),
                   dict(d["removed"]))


_RUN_COLS = ("run_id, flow, version, code_fp, fleet_id, month, input_fp, status, outputs, stats, error, started_at, "
             "finished_at")


def _now() -> datetime:
    """Now as naive UTC, the form TIMESTAMP columns hold."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Manifest:
    """The manifest file. Use as a context manager; `transaction()` groups writes atomically."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        # One DuckDB connection is not safe for concurrent use; pull threads share the manifest.
        self._lock = threading.RLock()
        self._lock_fh = None
        if not read_only:
            _owner_only_files()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fh = self._take_lock()
        if not read_only and not self.path.exists():
            try:
                self._create()
            except BaseException:
                self._release_lock()
                raise
        try:
            self.conn = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            self._release_lock()
            if "lock" in str(e).lower():
                raise ManifestLocked(f"manifest {self.path} is in use by another process ({self._holder()}); "
                                     "fleetlake allows one writer at a time") from None
            raise _damaged(self.path, e) from None
        except duckdb.Error as e:
            self._release_lock()
            raise _damaged(self.path, e) from None
        if not read_only:
            _private(self.path)
        try:
            self.conn.execute("SET TimeZone = 'UTC'")
            _verify(self.conn)  # before migrating: never write into a damaged file
            self._migrate()
        except duckdb.Error as e:
            self.close()
            raise _damaged(self.path, e) from None
        except Exception:
            self.close()
            raise
        # The root of read views: only `reading()` uses it, under its own small lock.
        self._read_root: duckdb.DuckDBPyConnection | None = self.conn.cursor()
        self._read_guard = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[Manifest]:
        """A read-only view of the manifest on its own connection, which never waits for this
        Manifest's writers: it sees what was committed when each statement starts. Use it for
        reads only, and briefly (a connection per call)."""
        with self._read_guard:
            if self._read_root is None:
                raise ManifestError(f"manifest {self.path} is closed")
            cursor = self._read_root.cursor()
        view = Manifest.__new__(Manifest)
        view.path, view.read_only, view._lock_fh = self.path, True, None
        view._lock = threading.RLock()
        view.conn = cursor
        try:
            yield view
        finally:
            cursor.close()

    # ------------------------------------------------------------------ lifecycle
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _take_lock(self) -> TextIO:
        fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        fh = os.fdopen(fd, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ManifestLocked(f"manifest {self.path} is held by {self._holder()}; "
                                 "fleetlake allows one writer at a time") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "command": " ".join(os.path.basename(a) if i == 0 else a
                                                 for i, a in enumerate(sys.argv))[:200],
                             "since": datetime.now(timezone.utc).isoformat()}))
        fh.flush()
        return fh

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
            self.conn = conn
            self._migrate()
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
            self.conn = None  # type: ignore[assignment]  # closed: no use after this
        _private(tmp)
        os.replace(tmp, self.path)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)

    def _holder(self) -> str:
        try:
            info = json.loads(self._lock_path().read_text() or "{}")
            return f"pid {info['pid']} on {info['host']} ({info['command']}) since {info['since']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def _release_lock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def close(self) -> None:
        # Under the lock: a scheduler job may be mid-query when the daemon shuts down.
        with self._lock:
            root = getattr(self, "_read_root", None)
            if root is not None:
                with self._read_guard:
                    root.close()
                    self._read_root = None
            conn = getattr(self, "conn", None)
            if conn is not None:
                conn.close()
                self.conn = None  # type: ignore[assignment]  # closed: no use after this
        self._release_lock()

    def check_file(self) -> str | None:
        """What is wrong with the file on disk, or None: for /readyz of the process that holds it.

        This process's DuckDB serves most reads from memory, so damage to the file would only show
        at the next start. A copy taken while no statement runs (DuckDB writes the file only inside
        one) is opened and read in full instead; the file itself is never opened twice.
        """
        return _check_copy(self.path, self._lock)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        c = self.conn
        has = _one(c.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"))
        current = (_one(c.execute("SELECT max(version) FROM schema_version")) if has else 0) or 0
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(f"manifest {self.path} has schema version {current}, newer than this "
                                     f"fleetlake understands ({SCHEMA_VERSION}); upgrade fleetlake")
        if current == SCHEMA_VERSION:
            return
        if self.read_only:
            raise ManifestError(f"manifest {self.path} needs migrating to version {SCHEMA_VERSION}; "
                                "open it once read-write")
        with self.transaction():
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)")
            for version, sql in MIGRATIONS:
                if version > current:
                    c.execute(sql)
                    c.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self.conn.execute("BEGIN TRANSACTION")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _all(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params or []).fetchall()

    def _run(self, sql: str, params: list[Any]) -> None:
        with self._lock:
            self.conn.execute(sql, params)

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

    def fleet(self, fleet_id: str) -> Fleet | None:
        rows = self._all("SELECT fleet_id, tsp, status, consent_at, history_start, error FROM fleets "
                         "WHERE fleet_id = ?", [fleet_id])
        return _fleet(rows[0]) if rows else None

    def fleets(self) -> list[Fleet]:
        rows = self._all("SELECT fleet_id, tsp, status, consent_at, history_start, error FROM fleets "
                         "ORDER BY fleet_id")
        return [_fleet(r) for r in rows]

    # ------------------------------------------------------------------ raw partitions
    _RAW_COLS = "fleet_id, dataset, month, seq, files, rows, bytes, fingerprint, committed_at, pull_id"

    def raw_partition(self, fleet_id: str, dataset: str, month: str) -> RawPartition | None:
        rows = self._all(f"SELECT {self._RAW_COLS} FROM raw_partitions "
                         "WHERE fleet_id = ? AND dataset = ? AND month = ?", [fleet_id, dataset, month])
        return _raw(rows[0]) if rows else None

    def raw_partitions(self, fleet_id: str | None = None, dataset: str | None = None) -> list[RawPartition]:
        rows = self._all(
            f"SELECT {self._RAW_COLS} FROM raw_partitions WHERE (? IS NULL OR fleet_id = ?) "
            "AND (? IS NULL OR dataset = ?) ORDER BY fleet_id, dataset, month",
            [fleet_id, fleet_id, dataset, dataset])
        return [_raw(r) for r in rows]

    def commit_raw(self, p: RawPartition) -> None:
        """Record a new version of a window; refused unless it follows the current one."""
        with self.transaction() as c:
            cur = c.execute("SELECT seq FROM raw_partitions WHERE fleet_id = ? AND dataset = ? AND month = ?",
                            [p.fleet_id, p.dataset, p.month]).fetchone()
            if (cur[0] if cur else 0) != p.seq - 1:
                raise CommitConflict(f"{p.dataset} {p.fleet_id} {p.month}: commit {p.seq} does not follow "
                                     f"committed version {cur[0] if cur else 0}")
            c.execute(f"INSERT OR REPLACE INTO raw_partitions ({self._RAW_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [p.fleet_id, p.dataset, p.month, p.seq, list(p.files), p.rows, p.bytes, p.fingerprint,
                       _db_time(p.committed_at), p.pull_id])

    def restore_raw(self, partitions: list[RawPartition]) -> None:
        """Used by rebuild: set windows as the store's markers say, whatever was there before."""
        with self.transaction() as c:
            for p in partitions:
                c.execute(f"INSERT OR REPLACE INTO raw_partitions ({self._RAW_COLS}) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [p.fleet_id, p.dataset, p.month, p.seq, list(p.files), p.rows, p.bytes, p.fingerprint,
                           _db_time(p.committed_at), p.pull_id])

    def restore_runs(self, runs: list[dict[str, Any]]) -> int:
        """Used by rebuild: add succeeded runs read from feature markers; runs already known stay."""
        added = 0
        with self.transaction() as c:
            for r in runs:
                if c.execute("SELECT 1 FROM flow_runs WHERE run_id = ?", [r["run_id"]]).fetchall():
                    continue
                c.execute("INSERT INTO flow_runs VALUES (?, ?, ?, ?, ?, ?, ?, 'succeeded', ?, ?, NULL, ?, ?)",
                          [r["run_id"], r["flow"], int(r["version"]), r["code_fp"], r["fleet_id"], r["month"],
                           r["input_fp"], list(r["outputs"]), json.dumps({"rows": r.get("rows"), "rebuilt": True}),
                           _db_time(r["committed_at"]), _db_time(r["committed_at"])])
                added += 1
        return added

    # ------------------------------------------------------------------ credentials (encrypted blobs)
    def load_credentials(self, fleet_id: str) -> bytes | None:
        rows = self._all("SELECT sealed FROM credentials WHERE fleet_id = ?", [fleet_id])
        return bytes(rows[0][0]) if rows else None

    def save_credentials(self, fleet_id: str, sealed: bytes) -> None:
        names.fleet_id(fleet_id)
        self._run("INSERT OR REPLACE INTO credentials VALUES (?, ?, ?)", [fleet_id, sealed, _now()])

    def all_credentials(self) -> dict[str, bytes]:
        """Every fleet's sealed blob (the start-up check for blobs sealed the old way reads them all)."""
        return {r[0]: bytes(r[1]) for r in self._all("SELECT fleet_id, sealed FROM credentials ORDER BY fleet_id")}

    # ------------------------------------------------------------------ consent nonces
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

    def select(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """A parameterized read for set-based reports (the console's fleet book) that no typed method covers."""
        return self._all(sql, params)

    # ------------------------------------------------------------------ off-boarding
    def fleet_tables(self) -> list[str]:
        """Every table with a fleet_id column, from the catalog (a table added later is not missed)."""
        rows = self._all("SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'main' "
                         "AND column_name = 'fleet_id' AND table_name <> 'offboardings' ORDER BY table_name")
        return [r[0] for r in rows]

    def fleet_rows(self, fleet_id: str) -> dict[str, int]:
        """How many rows of `fleet_id` each table holds."""
        with self._lock:
            return {t: int(_one(self.conn.execute(f'SELECT count(*) FROM "{t}" WHERE fleet_id = ?', [fleet_id])) or 0)
                    for t in self.fleet_tables()}

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

    def offboardings(self) -> list[Offboarding]:
        rows = self._all("SELECT fleet_id, tsp, actor, done_at, removed FROM offboardings ORDER BY done_at, fleet_id")
        return [Offboarding(r[0], r[1], r[2], _utc(r[3]), json.loads(r[4]) if isinstance(r[4], str) else r[4])  # type: ignore[arg-type]
                for r in rows]

    def query_with(self, name: str, table: Any, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run `sql` with an Arrow table visible under `name` (set-based planning joins)."""
        with self._lock:
            self.conn.register(name, table)
            try:
                return self.conn.execute(sql, params or []).fetchall()
            finally:
                self.conn.unregister(name)

    # ------------------------------------------------------------------ flows
    def flow_schema(self, flow: str, version: int) -> str | None:
        rows = self._all("SELECT schema_fp FROM flow_schemas WHERE flow = ? AND version = ?", [flow, version])
        return rows[0][0] if rows else None

    def record_flow_schema(self, flow: str, version: int, schema_fp: str) -> None:
        self._run("INSERT INTO flow_schemas VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  [flow, version, schema_fp, _now()])

    def record_run(self, run: FlowRun) -> None:
        self._run(f"INSERT INTO flow_runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [run.run_id, run.flow, run.version, run.code_fp, run.fleet_id, run.month, run.input_fp,
                   RunStatus(run.status).value, list(run.outputs),
                   json.dumps(run.stats) if run.stats is not None else None, run.error, _db_time(run.started_at),
                   _db_time(run.finished_at)])

    def rekey_code_fingerprints(self, changes: list[tuple[str, int, str, str]]) -> int:
        """Re-key runs of (flow, version) whose code fingerprint is `old` to `new`; returns how many."""
        n = 0
        with self.transaction() as c:
            for flow, version, old, new in changes:
                n += _one(c.execute("UPDATE flow_runs SET code_fp = ? WHERE flow = ? AND version = ? AND code_fp = ?",
                                    [new, flow, version, old]))
        return n

    def latest_runs(self, fleet_id: str | None = None, succeeded_only: bool = False) -> list[FlowRun]:
        """The newest run of each (flow, version, fleet, month) window, optionally of one fleet only."""
        rows = self._all(f"""
            SELECT {_RUN_COLS} FROM flow_runs
            WHERE (? IS NULL OR fleet_id = ?) AND (NOT ? OR status = 'succeeded')
            QUALIFY row_number() OVER (PARTITION BY flow, version, fleet_id, month
                                       ORDER BY started_at DESC, run_id DESC) = 1
            ORDER BY fleet_id, month, flow, version""", [fleet_id, fleet_id, succeeded_only])
        return [_flow_run(r) for r in rows]

    def runs_finished(self) -> int:
        """How many runs have finished (succeeded or failed): a feature pass's progress."""
        return int(self._all("SELECT count(finished_at) FROM flow_runs")[0][0])

    def runs(self, flow: str | None = None) -> list[FlowRun]:
        rows = self._all(f"SELECT {_RUN_COLS} FROM flow_runs WHERE (? IS NULL OR flow = ?) "
                         "ORDER BY started_at, run_id", [flow, flow])
        return [_flow_run(r) for r in rows]

    # ------------------------------------------------------------------ pull checkpoints
    def complete_slice(self, fleet_id: str, stream: str, window_key: str, rows: int, detail: str | None = None
                        ) -> None:
        self._run("INSERT OR REPLACE INTO pull_checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                  [fleet_id, stream, window_key, _now(), rows, detail])

    def completed_slices(self, fleet_id: str, stream: str) -> set[str]:
        rows = self._all("SELECT window_key FROM pull_checkpoints WHERE fleet_id = ? AND stream = ?",
                         [fleet_id, stream])
        return {r[0] for r in rows}

    def checkpoint_rate(self, fleet_id: str, since: datetime) -> tuple[int, float] | None:
        """(pings, seconds) checkpointed for a fleet's GPS from `since` to its last checkpoint, or None."""
        rows = self._all("SELECT sum(rows), min(completed_at), max(completed_at) FROM pull_checkpoints "
                         "WHERE fleet_id = ? AND completed_at >= ? AND stream LIKE '%/gps/%'",
                         [fleet_id, _db_time(since)])
        if not rows or rows[0][0] is None or rows[0][2] <= rows[0][1]:
            return None
        return int(rows[0][0]), (rows[0][2] - rows[0][1]).total_seconds()

    # ------------------------------------------------------------------ backfill months, readiness
    def record_month_pulled(self, fleet_id: str, month: str) -> None:
        """Every slice overlapping `month` is committed; the first time is kept."""
        self._run("INSERT INTO fleet_months VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                  [names.fleet_id(fleet_id), names.month(month), _now()])

    def pulled_months(self, fleet_id: str) -> dict[str, datetime]:
        rows = self._all("SELECT month, pulled_at FROM fleet_months WHERE fleet_id = ? ORDER BY month", [fleet_id])
        return {r[0]: _utc(r[1]) for r in rows}  # type: ignore[misc]  # pulled_at is NOT NULL

    def readiness_fired(self, fleet_id: str) -> dict[int, tuple[str, str, datetime, bool]]:
        """threshold -> (first month, last month, fired at, delivered)."""
        rows = self._all("SELECT threshold, first_month, last_month, fired_at, delivered FROM readiness_fired "
                         "WHERE fleet_id = ? ORDER BY threshold", [fleet_id])
        return {int(r[0]): (r[1], r[2], _utc(r[3]), bool(r[4])) for r in rows}  # type: ignore[misc]

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
                _private(fresh)
            except BaseException:
                for leftover in (fresh, Path(f"{fresh}.wal"), Path(f"{fresh}.lock")):
                    leftover.unlink(missing_ok=True)
                raise
            if self._read_root is not None:
                self._read_root.close()
            self.conn.close()  # checkpoints: the old WAL is folded in and removed
            try:
                os.replace(fresh, self.path)
                Path(f"{self.path}.wal").unlink(missing_ok=True)  # never replayed into the fresh file
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            finally:
                self.conn = duckdb.connect(str(self.path))
                self.conn.execute("SET TimeZone = 'UTC'")
                self._read_root = self.conn.cursor()
        _private(self.path)

    def _copy_into(self, fresh: Path, credentials: dict[str, bytes]) -> None:
        c = self.conn
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


T = TypeVar("T")


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """The manifest's writer lock alone, without opening (or creating) the file."""
    holder = Manifest.__new__(Manifest)
    holder.path, holder.read_only, holder._lock_fh = Path(path), False, None
    holder.path.parent.mkdir(parents=True, exist_ok=True)
    holder._lock_fh = holder._take_lock()
    try:
        yield
    finally:
        holder._release_lock()


def replace_manifest(path: Path, fill: Callable[[Manifest], T]) -> tuple[T, Path | None]:
    """Build a new manifest with `fill`, then swap it in for `path` atomically.

    The file it replaces, damaged or not, is kept as `<path>.damaged-<UTC time>` (with its WAL,
    which must not be replayed into the new file) and returned. Holds the manifest's lock all
    along, so no daemon opens either file half-way; if `fill` fails, `path` is untouched.
    """
    path = Path(path).resolve()
    # A Manifest holding only its lock: the damaged file is never opened.
    holder = Manifest.__new__(Manifest)
    holder.path, holder.read_only, holder._lock_fh = path, False, None
    path.parent.mkdir(parents=True, exist_ok=True)
    holder._lock_fh = holder._take_lock()
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
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return result, aside
    finally:
        for leftover in (new, Path(f"{new}.wal"), Path(f"{new}.lock")):
            leftover.unlink(missing_ok=True)
        holder._release_lock()


def manifest_damage(path: Path) -> str | None:
    """Why the manifest at `path` cannot be used, or None (also None when there is no file yet).

    Opens no connection to the file: a copy is checked, so this is safe on a file being replaced.
    """
    path = Path(path)
    return _check_copy(path, threading.RLock()) if path.exists() else None


def _check_copy(path: Path, lock: threading.RLock) -> str | None:
    with tempfile.TemporaryDirectory(prefix="fleetlake-check-") as tmp:
        copy = Path(tmp) / path.name
        with lock:
            shutil.copyfile(path, copy)
            if Path(f"{path}.wal").exists():
                shutil.copyfile(f"{path}.wal", f"{copy}.wal")
        try:
            conn = duckdb.connect(str(copy))
            try:
                _verify(conn)
            finally:
                conn.close()
        except duckdb.Error as e:
            return _damage_reason(e)
    return None


def _verify(conn: duckdb.DuckDBPyConnection) -> None:
    """Read every column of every table (DuckDB checks each block's checksum on read); raises duckdb.Error."""
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
    if tables and "schema_version" not in tables:
        raise duckdb.Error("not a fleetlake manifest: it has tables but no schema_version")
    for table in tables:  # names from the catalog, not from input
        conn.execute(f'SELECT count(*), max(hash(COLUMNS(*))) FROM "{table}"').fetchall()


def _damage_reason(e: Exception) -> str:
    """A short, path-free reason for a damaged file."""
    text = str(e)
    if "not a valid DuckDB database" in text:
        return "it is not a DuckDB database (empty or overwritten)"
    if "Could not read enough bytes" in text:
        return "it is truncated"
    if "checksum" in text:
        return "a block fails its checksum (overwritten or corrupted)"
    if "not a fleetlake manifest" in text:
        return "it is not a fleetlake manifest"
    return f"DuckDB cannot read it ({type(e).__name__})"


def _damaged(path: Path, e: Exception) -> ManifestDamaged:
    reason = _damage_reason(e)
    return ManifestDamaged(f"manifest {path} is damaged: {reason}. Nothing was written to it. Stop fleetlake and run "
                           "`fleetlake manifest rebuild`: it rebuilds the manifest from the store into a new file and "
                           "keeps the damaged one aside.", reason)


def _owner_only_files() -> None:
    """Make this process create its files owner-only (umask 077), for good.

    DuckDB writes `<manifest>.wal` itself: it creates it at the first write after every
    checkpoint and deletes it at the next, with the process umask. No chmod of ours can come
    between its creation and its first bytes (nor could one made earlier survive the next
    checkpoint), so only the umask keeps it 0600 whenever it exists. The process owning the
    manifest keeps only private state locally (its data dir is 0700), so the umask stays.
    """
    current = os.umask(0o077)
    os.umask(current | 0o077)


def _private(path: Path) -> None:
    """Owner-only: the manifest holds the fleet list and (encrypted) credentials."""
    try:
        os.chmod(path, 0o600)
    except PermissionError:
        pass  # not ours to change (a read-only mount); the data dir's 0700 still guards it


def _one(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The single value a statement answers (a count, a max)."""
    row = cursor.fetchone()
    return row[0] if row else None


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt)


def _db_time(dt: datetime | None) -> datetime | None:
    """Naive UTC for a TIMESTAMP column."""
    return None if dt is None else dt.astimezone(timezone.utc).replace(tzinfo=None)


def _fleet(row: tuple) -> Fleet:
    return Fleet(row[0], row[1], FleetStatus(row[2]), _utc(row[3]), _utc(row[4]), row[5])


def _flow_run(r: tuple) -> FlowRun:
    stats = json.loads(r[9]) if isinstance(r[9], str) else r[9]
    return FlowRun(r[0], r[1], int(r[2]), r[3], r[4], r[5], r[6], RunStatus(r[7]), tuple(r[8] or ()), stats, r[10],
                   _utc(r[11]), _utc(r[12]))  # type: ignore[arg-type]  # started_at is NOT NULL


def _raw(row: tuple) -> RawPartition:
    return RawPartition(row[0], row[1], row[2], int(row[3]), tuple(row[4]), int(row[5]), int(row[6]), row[7],
                        _utc(row[8]), row[9])  # type: ignore[arg-type]  # committed_at is NOT NULL

