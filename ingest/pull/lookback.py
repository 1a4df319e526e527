"""The lookback, pulled again by every refresh, read only where its records changed.

A slice that ended less than its stream's lookback before now (ingest/pull/streams.py) is not
checkpointed: every refresh pulls it again, so records that reach the TSP late still land. A
refresh with nothing new used to spend most of its CPU there, decoding, normalising, validating,
spooling and merging records the lake already held. So such a slice is fetched unread
(connectors.pages), its pages' records are digested, and:

- the digest equals the one kept when the slice was last committed (manifest `lookback_pages`):
  the slice is unchanged, nothing is read, spooled or merged, and no commit is made for it;
- it differs (a late ping, an edit, more of the slice now that time has passed) or none was kept:
  the slice is read and spooled as always, and after its rows are committed the new digest is
  kept in the same manifest transaction as the pull's checkpoints;
- its pages held a quarantined record: no digest is kept, the slice is read every time (a
  verdict such as "timestamp out of range" depends on the pull's now, so the same bytes may land
  later).

The digest is a hint, never the data: a manifest without it (rebuilt, older) reads the slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from connectors.pages import Fetched
from partitions.writer import Spooled


@dataclass(frozen=True)
class Seen:
    """What the last commit of a lookback slice held: its pages' digest and its rows."""
    digest: str
    rows: int


@dataclass(frozen=True)
class Pulled:
    """One slice fetched: its candidate rows (None: unchanged since `seen`, nothing to read) and
    the digest of its pages' records (None outside the lookback: not computed)."""
    table: pa.Table | None
    digest: str | None


def pull(connector: Any, endpoint: str, fetch: str, args: tuple[Any, ...], in_lookback: bool,
         seen: Seen | None) -> Pulled:
    """Fetch one slice; a slice in the lookback is fetched unread, and read only if it changed."""
    if not in_lookback or not fetch:
        return Pulled(getattr(connector, endpoint)(*args), None)
    fetched: Fetched = getattr(connector, fetch)(*args)
    digest = fetched.digest()
    if seen is not None and seen.digest == digest:
        return Pulled(None, digest)
    return Pulled(fetched.read(), digest)


def kept(digest: str | None, spooled: Spooled | None) -> str | None:
    """The digest to keep for a slice once committed: none when it quarantined a record."""
    if digest is None or spooled is None or spooled.quarantined:
        return None
    return digest
