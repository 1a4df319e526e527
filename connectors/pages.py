"""A slice's pages fetched but not yet read: what lets a refresh skip lookback pages it already has.

A refresh pulls the last days of every stream again (ingest/pull/streams.py, the lookback), for
records that reach the TSP late. Most of those pages hold exactly the records the last pull
committed, and reading them again (decode, normalise, validate, spool, merge) cost a refresh
most of its CPU. So a lookback slice is fetched in two steps: `*_fetch` gets every page and
keeps each page's records as the TSP sent them (bytes, not parsed), and `Fetched.read` turns
the pages it is asked for into candidate rows. `digests` cover each page's records' bytes
(Samsara: the page's `data` array, without the cursor; Motive: its records list, without the
`total` that grows with every record), so the caller compares
them with the digests it kept from the last commit of the slice and reads only the pages that
differ (ingest/pull/lookback.py): a page starts where it did as long as no record before it
changed, so a slice that only grew at its end is read from its first new page on.
A slice outside the lookback is read as it is fetched (the connectors' `*_slice`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass

import pyarrow as pa

# skip (page indexes) -> the candidate rows of the other pages, and the rows each page gave (0 if skipped)
Reader = Callable[[Collection[int]], tuple[pa.Table, tuple[int, ...]]]


@dataclass(frozen=True)
class Fetched:
    records: tuple[bytes, ...]      # per page, the bytes its records were sent as
    reader: Reader

    def digests(self) -> tuple[str, ...]:
        """Per page, a digest of its records (an identity check, not a security one: sha1 is fast)."""
        return tuple(hashlib.sha1(r, usedforsecurity=False).hexdigest() for r in self.records)

    def read(self, skip: Collection[int] = ()) -> pa.Table:
        """The candidate rows of every page but those in `skip`."""
        return self.reader(skip)[0]


def page_rows(counts: list[int], skip: Collection[int]) -> tuple[int, ...]:
    """Rows per page with the skipped ones as 0 (a reader's second result)."""
    return tuple(0 if i in skip else n for i, n in enumerate(counts))
