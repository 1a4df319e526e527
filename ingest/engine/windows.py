"""Windows beyond the month: one named type for each, with its key, its partition and its months.

- a month window: key "YYYY-MM" (every raw flow's, and a flow on flows by default);
- the quote window: the last N complete months (N = FLEETLAKE_QUOTE_MONTHS), key "q<N>:<last month>";
  its partition is its last month, so a quote per month stays readable;
- the book window: every fleet's quote window at once, key "book:q<N>:<last month>", under the
  pseudo-fleet BOOK.

A trailing window is planned like a month: its input fingerprint joins the content digests of
its months' inputs, so it reruns when any of them changed, and never otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.months import month_bounds_ms, month_of_ms

BOOK = "book"  # the book window's fleet id: the book is all fleets, one window


@dataclass(frozen=True)
class Window:
    key: str
    month: str  # the partition its output is committed to: its last month
    months: tuple[str, ...]  # the months it covers, oldest first
    complete: bool


def month_window(month: str, now_ms: int) -> Window:
    return Window(month, month, (month,), month_bounds_ms(month)[1] <= now_ms)


def previous_month(month: str) -> str:
    return month_of_ms(month_bounds_ms(month)[0] - 1)


def quote_window(now_ms: int, n: int) -> Window:
    """The last `n` complete months before the open one."""
    last = previous_month(month_of_ms(now_ms))
    months = [last]
    while len(months) < n:
        months.append(previous_month(months[-1]))
    return Window(f"q{n}:{last}", last, tuple(reversed(months)), True)


def book_window(now_ms: int, n: int) -> Window:
    q = quote_window(now_ms, n)
    return Window(f"book:{q.key}", q.month, q.months, True)
