"""A full local disk, recognised wherever it surfaces and reported as one error (`DiskFull`).

ENOSPC reaches fleetlake in several dresses: an OSError with errno 28 (Python, pyarrow), a DuckDB
IOException that only says "No space left on device", a FileNotFoundError for a spool file that a
failed write removed, or any of those wrapped by a StoreError. `disk_full_as` turns each into a
`DiskFull` that names the directory by its kind and setting (a path is internal: it must not reach
an API answer) and says how many bytes are left.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import DiskFull

_NO_SPACE = os.strerror(errno.ENOSPC).lower()  # "no space left on device"
NEARLY_FULL = 1 << 20  # below this, a file that vanished mid-write is taken for a victim of the full disk


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, is ENOSPC."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if _NO_SPACE in str(exc).lower():  # DuckDB's IOException, pyarrow's wrapped errors
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of `path` (its nearest existing
    ancestor), or None when that cannot be measured."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        try:
            return shutil.disk_usage(p).free
        except OSError:
            return None
    return st.f_bavail * st.f_frsize


@contextmanager
def disk_full_as(setting: str, where: str, path: Path) -> Iterator[None]:
    """Raise DiskFull(setting, where, bytes free under `path`) for ENOSPC inside the block.

    A FileNotFoundError counts when the disk under `path` is (nearly) full now: a write that failed for
    space can take its file with it (pyarrow removes a half-written file), and the next step then
    finds it gone.
    """
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        free = free_bytes(path)
        if is_disk_full(e) or (isinstance(e, FileNotFoundError) and free is not None and free < NEARLY_FULL):
            raise DiskFull(setting, where, free) from e
        raise
