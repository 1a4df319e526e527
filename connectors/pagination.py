"""The two pagination styles the TSPs use, behind one small contract: an iterator of pages.

Cursor pages (Samsara) raise on a repeated cursor instead of looping forever, and follow empty
pages that still say there is more. Numbered pages (Motive) stop at the reported total.
"""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from common.errors import PaginationLoop

P = TypeVar("P")

MAX_PAGES = 1_000_000


def cursor_pages(tsp: str, fetch: Callable[[str | None], tuple[P, str | None]]) -> Iterator[P]:
    """fetch(cursor) -> (page, next cursor or None when done)."""
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page, nxt = fetch(cursor)
        yield page
        if not nxt:
            return
        if nxt in seen:
            raise PaginationLoop(tsp, f"the API repeated a pagination cursor after {len(seen)} pages")
        seen.add(nxt)
        cursor = nxt
    raise PaginationLoop(tsp, f"more than {MAX_PAGES} pages")


def numbered_pages(fetch: Callable[[int], tuple[P, int, int]]) -> Iterator[P]:
    """fetch(page_no) -> (page, items on it, total items); pages from 1 until total is covered."""
    seen = 0
    for page_no in range(1, MAX_PAGES):
        page, count, total = fetch(page_no)
        yield page
        seen += count
        if count == 0 or seen >= total:
            return
