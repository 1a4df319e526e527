"""A slice's pages fetched but not yet read: what lets a refresh skip a lookback slice it already has.

A refresh pulls the last days of every stream again (ingest/pull/streams.py, the lookback), for
records that reach the TSP late. Most of the time the pages hold exactly the records the last
pull committed, and reading them again (decode, normalise, validate, spool, merge) costs a
refresh most of its CPU. So a lookback slice is fetched in two steps: `*_fetch` gets every page
and keeps each page's records as the TSP sent them (bytes, not parsed), and `Fetched.read`
turns them into candidate rows. `digest` covers the records' bytes (Samsara: each page's `data`
array, without the cursor; Motive: the body), so the caller compares it with the digest it kept
from the last commit of the slice and reads only pages that differ (ingest/pull/lookback.py).
A slice outside the lookback is read as it is fetched, page by page (the connectors' `*_slice`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa


@dataclass(frozen=True)
class Fetched:
    records: tuple[bytes, ...]      # per page, the bytes its records were sent as
    read: Callable[[], pa.Table]    # the candidate rows of all pages (decode, normalise)

    def digest(self) -> str:
        """A digest of every page's records, in order (length-prefixed: pages do not run together)."""
        h = hashlib.sha1(usedforsecurity=False)  # an identity check, not a security one (fast)
        for r in self.records:
            h.update(len(r).to_bytes(8, "little"))
            h.update(r)
        return h.hexdigest()
