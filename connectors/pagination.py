"""The two pagination styles the TSPs use, behind one small contract: an iterator of pages, with
the shapes of their `pagination` objects (`Cursor`, `PageNumbers`) that every route's page decodes.

Cursor pages (Samsara) raise on a repeated cursor instead of looping forever, and follow empty
pages that still say there is more. Numbered pages (Motive) follow `page_no` until
`page_no * per_page >= total` or an empty page; a response without `pagination` is taken as the
whole answer, because Motive's general rule (every list GET pages, 25 by default, at most 100)
and some endpoints' own pages disagree on whether they page at all.

Both take a page cap: a pull slice passes what the slice can hold (`Limits.max_pages`), so a server
answering empty pages with a fresh cursor forever ends the slice with a clear error in seconds,
not after MAX_PAGES (about 14 hours at a TSP's rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import msgspec

from common.errors import MalformedResponse, PaginationLoop

P = TypeVar("P")
S = TypeVar("S")

MAX_PAGES = 1_000_000


@dataclass(frozen=True)
class PageNumbers:
    """Motive's `{"pagination": {"per_page", "page_no", "total"}}`, as the server reports it (msgspec
    decodes a page's `pagination` straight into it)."""

    per_page: int
    page_no: int
    total: int


class Cursor(msgspec.Struct, gc=False):
    """Samsara's `{"pagination": {"endCursor", "hasNextPage"}}`."""

    endCursor: str = ""
    hasNextPage: bool = False

    def next(self) -> str | None:
        """The cursor of the next page, or None after the last."""
        return self.endCursor if self.hasNextPage else None


def salvaged_pagination(tsp: str, body: dict[str, Any], shape: type[S], what: str) -> S:
    """The `pagination` of a page that failed its typed decode (its records are read one by one):
    it must still be the documented shape, since without it there is no next page to ask for."""
    try:
        return msgspec.convert(body.get("pagination"), shape)
    except msgspec.ValidationError as e:
        raise MalformedResponse(tsp, f"{what}: pagination is not the documented shape ({e})") from None


def cursor_pages(tsp: str, fetch: Callable[[str | None], tuple[P, str | None]],
                 max_pages: int = MAX_PAGES, what: str = "") -> Iterator[P]:
    """fetch(cursor) -> (page, next cursor or None when done); at most `max_pages` pages."""
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(max_pages):
        page, nxt = fetch(cursor)
        yield page
        if not nxt:
            return
        if nxt in seen:
            raise PaginationLoop(tsp, f"the API repeated a pagination cursor after {len(seen)} pages")
        seen.add(nxt)
        cursor = nxt
    raise PaginationLoop(tsp, _too_many(max_pages, what))


def numbered_pages(tsp: str, fetch: Callable[[int], tuple[P, int, PageNumbers | None]],
                   max_pages: int = MAX_PAGES, what: str = "") -> Iterator[P]:
    """fetch(page_no) -> (page, items on it, its pagination or None); pages from 1.

    The server's own per_page counts (it may clamp what we asked for), and a server answering a
    different page than the one asked for is a loop, not more data.
    """
    for page_no in range(1, max_pages + 1):
        page, count, numbers = fetch(page_no)
        yield page
        if numbers is None or count == 0:
            return
        if numbers.page_no != page_no:
            raise PaginationLoop(tsp, f"asked for page {page_no}, the API answered page {numbers.page_no}")
        if page_no * max(1, numbers.per_page) >= numbers.total:
            return
    raise PaginationLoop(tsp, _too_many(max_pages, what))


def _too_many(max_pages: int, what: str) -> str:
    return f"more than {max_pages:,} pages{' for ' + what if what else ''}: the API keeps saying there is more"
