"""Per-fleet data keys, so that off-boarding can make every copy of a fleet's tokens unreadable.

Crypto-shredding: each fleet's tokens are sealed with a data key of its own (a fresh Fernet key),
and destroying that key is what off-boarding does to the tokens. Deleting the sealed blob alone
is not enough: DuckDB leaves deleted rows in free blocks of the manifest and in its WAL, object
stores keep versions and backups keep everything. With the key gone, each of those copies is
ciphertext that nothing opens, FLEETLAKE_TOKEN_KEY included.

- A data key is kept only wrapped (Fernet-sealed with the master key FLEETLAKE_TOKEN_KEY), never
  plain at rest.
- The wrapped keys live outside DuckDB, in one small file beside the manifest
  (`<manifest>.keys`, 0600), which is replaced whole on each change (temp file, fsync, rename,
  fsync of the directory) and never edited in place: the replaced file leaves no old key in any
  file fleetlake keeps.
- Each wrapped key is mirrored to the store (`_control/keys/<fleet>.key`, written when the key is
  made, partitions/control_records.py) so that `fleetlake manifest rebuild` from the store alone
  can still open the restored credentials; off-boarding deletes that mirror too.

A key is written a few times in its life (made, mirrored, restored), unlike the tokens, which
rotate every hour or so: keeping the rarely written thing small and erasable is the point.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from common import names
from common.errors import AuthError, ConfigError, ManifestError

FORMAT = 1
_NO_MASTER = "is required (generate one with `fleetlake keygen`)"


def keyring_path(manifest_path: Path) -> Path:
    """Where the data keys of the manifest at `manifest_path` are kept: beside it."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(manifest_path.name + ".keys")


def looks_wrapped(blob: bytes) -> bool:
    """Whether `blob` has the shape of a Fernet token (version byte 0x80); a cheap check for restored keys."""
    try:
        raw = base64.urlsafe_b64decode(blob)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 73 and raw[0] == 0x80  # version, time, IV, one block, HMAC


class Keyring:
    """The wrapped data keys of every fleet, in one file replaced whole on each change.

    One writer: the process that holds the manifest's lock (the daemon, or a CLI command on its
    own manifest). Every call reads the file, so what it answers is always what is on disk.
    """

    def __init__(self, path: Path, master_key: str | None) -> None:
        self.path = Path(path)
        self._master_key = master_key
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], dict[str, str]] | None = None  # (inode, mtime, size) -> keys

    # ------------------------------------------------------------------ reads
    def fleets(self) -> list[str]:
        return sorted(self._read())

    def wrapped(self, fleet_id: str) -> bytes | None:
        """The fleet's data key as stored: sealed with the master key."""
        value = self._read().get(fleet_id)
        return value.encode() if value is not None else None

    def data_key(self, fleet_id: str) -> str | None:
        """The fleet's data key, unwrapped with the master key; None when the fleet has none."""
        wrapped = self.wrapped(fleet_id)
        if wrapped is None:
            return None
        try:
            return self._master().decrypt(wrapped).decode()
        except InvalidToken:
            raise AuthError("vault", f"fleet {fleet_id}'s data key cannot be unwrapped with FLEETLAKE_TOKEN_KEY "
                                     "(a different key than the one it was sealed with?)") from None

    # ------------------------------------------------------------------ writes
    def create(self, fleet_id: str) -> str:
        """A new data key for `fleet_id`, on disk before it is returned; an existing key is kept and returned."""
        names.fleet_id(fleet_id)
        with self._lock:
            keys = self._read()
            if fleet_id not in keys:
                key = Fernet.generate_key()
                keys[fleet_id] = self._master().encrypt(key).decode()
                self._write(keys)
        found = self.data_key(fleet_id)
        assert found is not None  # written above, or there already
        return found

    def restore(self, wrapped: dict[str, bytes]) -> None:
        """Wrapped keys read from the store (rebuild): they replace what the file holds for those fleets.

        The master key is not needed: the keys stay wrapped. A key that is not Fernet-shaped is refused.
        """
        if not wrapped:
            return
        for fleet_id, blob in wrapped.items():
            names.fleet_id(fleet_id)
            if not looks_wrapped(blob):
                raise ValueError(f"the data key of {fleet_id} is not a sealed key")
        with self._lock:
            keys = self._read()
            keys.update({f: b.decode() for f, b in wrapped.items()})
            self._write(keys)

    def destroy(self, fleet_id: str) -> bool:
        """Forget the fleet's data key: the file is rewritten without it. False when it had none."""
        with self._lock:
            keys = self._read()
            if keys.pop(fleet_id, None) is None:
                return False
            self._write(keys)
        return True

    # ------------------------------------------------------------------ the file
    def _master(self) -> Fernet:
        if self._fernet is None:
            if not self._master_key:
                raise ConfigError("FLEETLAKE_TOKEN_KEY", _NO_MASTER)
            try:
                self._fernet = Fernet(self._master_key.encode())
            except (ValueError, TypeError):
                raise ConfigError("FLEETLAKE_TOKEN_KEY", "must be a Fernet key: 32 url-safe base64-encoded bytes") \
                    from None
        return self._fernet

    def _read(self) -> dict[str, str]:
        """The file's keys (a copy). Parsed again only when the file was replaced: a write renames a
        new file into place, so its inode, time or size changes."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._cache
            if cached is not None and cached[0] == stamp:
                return dict(cached[1])
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise ManifestError(f"keyring {self.path} cannot be read: {e.strerror}") from None
        try:
            d = json.loads(raw)
            if d.get("format") != FORMAT or not isinstance(d.get("keys"), dict):
                raise ValueError("not a fleetlake keyring")
            keys = {str(k): str(v) for k, v in d["keys"].items()}
            self._cache = (stamp, keys)
            return dict(keys)
        except (ValueError, AttributeError):
            raise ManifestError(f"keyring {self.path} is damaged; stop fleetlake and run `fleetlake manifest "
                                "rebuild`, which restores the fleets' data keys from the store") from None

    def _write(self, keys: dict[str, str]) -> None:
        """Replace the file: a new file under a temporary name, synced, then renamed over the old one."""
        data = json.dumps({"format": FORMAT, "keys": dict(sorted(keys.items()))}, indent=1).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ManifestError(f"keyring {self.path} cannot be written: {e.strerror}") from None
