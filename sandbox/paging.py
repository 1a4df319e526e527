"""How the fake TSPs page a list: one helper per TSP, for every route that lists (GPS and HOS alike).

- Samsara: an offset behind an opaque cursor bound to the query (`after` in, `endCursor` and
  `hasNextPage` out; `endCursor` "may be an empty string if there are no more pages", the SDK's
  PaginationResponse), at most `limit` a page (default and maximum 512). Routes without a `limit`
  parameter page at a size of Samsara's own ("Samsara tunes the number of results on each page ...
  and may change the number of results on each page at any time"), and "a page might have very few
  results or might be empty" while more follow (developers.samsara.com/docs/pagination). The
  fleet's `page_sizes` quirk serves exactly that: pages cut at 25-100% of their size, and the
  last records followed by an empty page that ends the list.
- Motive: `per_page` (25 by default, at most 100; larger values are clamped) and `page_no` from 1,
  every answer with `pagination {per_page, page_no, total}` (developer.gomotive.com/reference/pagination).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.faults import chance
from sandbox.http import BadRequest, decode_cursor, encode_cursor, json_bytes, query_hash, raw_json
from sandbox.quirks import Quirks

SAMSARA_MAX_LIMIT = 512
MOTIVE_DEFAULT_PER_PAGE = 25
MOTIVE_MAX_PER_PAGE = 100


def samsara_limit(request: Request) -> int:
    """The request's `limit`: 1 to 512, 512 when not given."""
    raw = request.query_params.get("limit")
    if raw is None:
        return SAMSARA_MAX_LIMIT
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= n <= SAMSARA_MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {SAMSARA_MAX_LIMIT}")
    return n


def cursor_page(request: Request, items: list[Any], size: int, quirks: Quirks | None = None, route: str = ""
                ) -> tuple[list[Any], dict[str, Any]]:
    """The page of `items` the request's cursor points at, and its Samsara `pagination`.

    With `quirks.page_sizes` the page is cut short at a size drawn from (seed, route, offset), and
    the page holding the last records still says there is more: the list ends with an empty page."""
    qh = query_hash(request, "after")
    start = 0
    after = request.query_params.get("after")
    if after:
        offset, h = decode_cursor(after, 2)
        if h != qh or not offset.isdigit():
            raise BadRequest("pagination cursor does not belong to this query")
        start = int(offset)
    short = quirks is not None and quirks.page_sizes
    if quirks is not None and short:
        size = max(1, int(size * (0.25 + 0.75 * chance(quirks.seed, "page-size", route, start))))
    end = min(start + size, len(items))
    more = end < len(items) or (short and start < len(items))
    return items[start:end], {"endCursor": encode_cursor(end, qh) if more else "", "hasNextPage": more}


def samsara_list(request: Request, items: list[Any], size: int | None = None, quirks: Quirks | None = None,
                 route: str = "") -> Response:
    """`{"data": [...], "pagination": {...}}`, `size` (default: the request's `limit`) a page."""
    page, pagination = cursor_page(request, items, samsara_limit(request) if size is None else size, quirks, route)
    return raw_json(json_bytes({"data": page, "pagination": pagination}))


def motive_paging(request: Request) -> tuple[int, int]:
    """(per_page, page_no) of the request: 25 and 1 by default, per_page clamped to 100."""
    try:
        per_page = int(request.query_params.get("per_page", str(MOTIVE_DEFAULT_PER_PAGE)))
        page_no = int(request.query_params.get("page_no", "1"))
    except ValueError:
        raise BadRequest("per_page and page_no must be integers") from None
    if per_page < 1 or page_no < 1:
        raise BadRequest("per_page and page_no must be positive")
    return min(per_page, MOTIVE_MAX_PER_PAGE), page_no


def motive_list(key: str, items: list[Any], request: Request) -> Response:
    """`{key: [...], "pagination": {per_page, page_no, total}}`: the request's numbered page."""
    per_page, page_no = motive_paging(request)
    page = items[(page_no - 1) * per_page: page_no * per_page]
    return raw_json(json_bytes({key: page, "pagination": {"per_page": per_page, "page_no": page_no,
                                                          "total": len(items)}}))
