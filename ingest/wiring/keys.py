"""The keys: the token key when none is configured (generated once, kept 0600 in the data dir),
and the OAuth state signing key derived from it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet

from common.errors import ConfigError
from ingest.wiring.settings import Settings

log = logging.getLogger("fleetlake.keys")


def local_token_key(data_dir: Path, name: str = "token.key", warn: bool = True) -> str:
    """A key kept next to the data it protects only guards against leaked backups of the manifest;
    production sets FLEETLAKE_TOKEN_KEY from a secret store instead."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
        if warn:
            log.warning("FLEETLAKE_TOKEN_KEY is not set: generated %s; set the key from a secret store in production",
                        path)
    return path.read_text().strip()


def state_key(settings: Settings) -> bytes:
    """The OAuth state signing key, derived from the token key so the CLI and daemon agree on it."""
    if settings.token_key is None:
        raise ConfigError("FLEETLAKE_TOKEN_KEY", "is required (generate one with `fleetlake keygen`)")
    return hmac.new(settings.token_key.get_secret_value().encode(), b"fleetlake oauth state", hashlib.sha256).digest()
