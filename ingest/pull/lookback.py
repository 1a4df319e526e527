"""The lookback, pulled again by every refresh, read only where its records changed.

A slice that ended less than its stream's lookback before now (ingest/pull/streams.py) is not
checkpointed: every refresh pulls it again, so records that reach the TSP late still land. A
refresh used to spend most of its CPU there, decoding, normalising, validating, spooling and
merging records the lake already held. So such a slice is fetched unread (connectors.pages), each
page's records are digested, and compared page by page with the digests kept when the slice was
last committed (manifest `lookback_pages`):

- every page the same (and as many): the slice is unchanged, nothing is read, spooled or merged,
  and no commit is made for it;
- some differ (a late ping or an edit, from its page on; the open week's new pages at its end)
  or none were kept: only the pages that differ are read and spooled; the others hold records
  the lake has. After the rows are committed the new digests are kept, in the same manifest
  transaction as the pull's checkpoints;
- a read page held a quarantined record: no digests are kept, the slice is read whole next time
  (a verdict such as "timestamp out of range" depends on the pull's now, so the same bytes may
  land later).

The digests are a hint, never the data: a manifest without them (rebuilt, older) reads the slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from connectors.pages import Fetched
from partitions.writer import Spooled


@dataclass(frozen=True)
class Seen:
    """What the last commit of a lookback slice held: per page, its records' digest and its rows."""
    pages: tuple[tuple[str, int], ...]

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.pages)

    @property
    def text(self) -> str:
        """As the manifest keeps it: `<digest>:<rows>` per page, space separated."""
        return " ".join(f"{d}:{n}" for d, n in self.pages)

    @staticmethod
    def parse(text: str) -> Seen | None:
        try:
            return Seen(tuple((d, int(n)) for d, n in (page.split(":") for page in text.split())))
        except ValueError:
            return None  # not ours (or damaged): the slice is read


@dataclass(frozen=True)
class Pulled:
    """One slice fetched: the candidate rows of its pages that were read (None: every page as in
    `seen`, nothing read), its pages now (None outside the lookback: not digested), and the rows
    of the pages skipped because the lake has them."""
    table: pa.Table | None
    pages: Seen | None
    skipped_rows: int = 0


def pull(connector: Any, endpoint: str, fetch: str, args: tuple[Any, ...], in_lookback: bool,
         seen: Seen | None) -> Pulled:
    """Fetch one slice; a slice in the lookback is fetched unread, and only its changed pages read."""
    if not in_lookback or not fetch:
        return Pulled(getattr(connector, endpoint)(*args), None)
    fetched: Fetched = getattr(connector, fetch)(*args)
    digests = fetched.digests()
    old = seen.pages if seen is not None else ()
    skip = frozenset(i for i, d in enumerate(digests) if i < len(old) and old[i][0] == d)
    if seen is not None and len(skip) == len(digests) == len(old):
        return Pulled(None, seen, seen.rows)
    table, rows = fetched.reader(skip)
    pages = Seen(tuple((d, old[i][1] if i in skip else rows[i]) for i, d in enumerate(digests)))
    return Pulled(table, pages, sum(old[i][1] for i in skip))


def kept(pages: Seen | None, spooled: Spooled | None) -> str | None:
    """The digests to keep for a slice once committed: none when it quarantined a record."""
    if pages is None or spooled is None or spooled.quarantined:
        return None
    return pages.text
