"""The token-encryption key when none is configured: generated once, kept 0600 in the data dir."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet

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
