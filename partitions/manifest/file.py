"""The manifest file's life: its lock, its creation, its integrity check, its replacement.

One writer process at a time. Besides DuckDB's own file lock, the writer holds an advisory lock
on `<manifest>.lock`, which records who holds it, so a second process gets an error naming the
holder instead of DuckDB's generic one (`FileLock`).

A damaged file (truncated, overwritten, empty) is found at open, by reading every column of
every table so that DuckDB checks each block's checksum (`verify`), and is never written into:
the one message says to run `fleetlake manifest rebuild`, which builds a new file from the store
and swaps it in atomically (`replace_manifest`, in the writer), keeping the damaged one aside. A
running daemon checks a copy of its own file for /readyz (`check_copy`). The file, its lock and
its WAL are 0600: they hold encrypted credentials and the fleet list.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import duckdb

from common.errors import ManifestDamaged, ManifestLocked


class FileLock:
    """The advisory writer lock `<manifest>.lock`, naming its holder (pid, host, command, since)."""

    def __init__(self, manifest_path: Path) -> None:
        self.manifest_path = manifest_path
        self.path = manifest_path.with_name(manifest_path.name + ".lock")
        self._fh: TextIO | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def take(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        fh = os.fdopen(fd, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ManifestLocked(f"manifest {self.manifest_path} is held by {self.holder()}; "
                                 "fleetlake allows one writer at a time") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "command": " ".join(os.path.basename(a) if i == 0 else a
                                                 for i, a in enumerate(sys.argv))[:200],
                             "since": datetime.now(timezone.utc).isoformat()}))
        fh.flush()
        self._fh = fh

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']} ({info['command']}) since {info['since']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def manifest_damage(path: Path) -> str | None:
    """Why the manifest at `path` cannot be used, or None (also None when there is no file yet).

    Opens no connection to the file: a copy is checked, so this is safe on a file being replaced.
    """
    path = Path(path)
    return check_copy(path, threading.RLock()) if path.exists() else None


def check_copy(path: Path, lock: threading.RLock) -> str | None:
    """Open and read in full a copy of the file (and its WAL), taken under `lock`: why it is damaged, or None."""
    with tempfile.TemporaryDirectory(prefix="fleetlake-check-") as tmp:
        copy = Path(tmp) / path.name
        with lock:
            shutil.copyfile(path, copy)
            if Path(f"{path}.wal").exists():
                shutil.copyfile(f"{path}.wal", f"{copy}.wal")
        try:
            conn = duckdb.connect(str(copy))
            try:
                verify(conn)
            finally:
                conn.close()
        except duckdb.Error as e:
            return damage_reason(e)
    return None


def verify(conn: duckdb.DuckDBPyConnection) -> None:
    """Read every column of every table (DuckDB checks each block's checksum on read); raises duckdb.Error."""
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
    if tables and "schema_version" not in tables:
        raise duckdb.Error("not a fleetlake manifest: it has tables but no schema_version")
    for table in tables:  # names from the catalog, not from input
        conn.execute(f'SELECT count(*), max(hash(COLUMNS(*))) FROM "{table}"').fetchall()


def damage_reason(e: Exception) -> str:
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


def damaged(path: Path, e: Exception) -> ManifestDamaged:
    reason = damage_reason(e)
    return ManifestDamaged(f"manifest {path} is damaged: {reason}. Nothing was written to it. Stop fleetlake and run "
                           "`fleetlake manifest rebuild`: it rebuilds the manifest from the store into a new file and "
                           "keeps the damaged one aside.", reason)


def owner_only_files() -> None:
    """Make this process create its files owner-only (umask 077), for good.

    DuckDB writes `<manifest>.wal` itself: it creates it at the first write after every
    checkpoint and deletes it at the next, with the process umask. No chmod of ours can come
    between its creation and its first bytes (nor could one made earlier survive the next
    checkpoint), so only the umask keeps it 0600 whenever it exists. The process owning the
    manifest keeps only private state locally (its data dir is 0700), so the umask stays.
    """
    current = os.umask(0o077)
    os.umask(current | 0o077)


def private(path: Path) -> None:
    """Owner-only: the manifest holds the fleet list and (encrypted) credentials."""
    try:
        os.chmod(path, 0o600)
    except PermissionError:
        pass  # not ours to change (a read-only mount); the data dir's 0700 still guards it
