"""Windows beyond the month: one named type for each, with its key, its partition and its months.

- a month window: key "YYYY-MM" (every raw flow's, and a flow on flows by default);
- the quote window: the last N complete months (N = FLEETLAKE_QUOTE_MONTHS), key "q<N>:<last month>";
  its partition is its last month, so a quote per month stays readable;
- the book window: every fleet's quote window at once, key "book:q<N>:<last month>", under the
  pseudo-fleet BOOK;
- an ISO week: key "YYYY-Www", Monday 00:00 to the next Monday 00:00 UTC; it touches one or two
  months, and its partition is the month of its Thursday.

A trailing window is planned like a month: its input fingerprint joins the content digests of
its months' inputs, so it reruns when any of them changed, and never otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

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


WEEK_MS = 7 * 86_400_000


def week_bounds_ms(key: str) -> tuple[int, int]:
    """[Monday 00:00 UTC, next Monday 00:00 UTC) of ISO week "YYYY-Www"."""
    try:
        year, _, week = key.partition("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValueError(f"invalid ISO week {key[:40]!r}: expected YYYY-Www") from None
    start = int(datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc).timestamp() * 1000)
    return start, start + WEEK_MS


def week_of_ms(ms: int) -> str:
    y, w, _ = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isocalendar()
    return f"{y}-W{w:02d}"


def week_window(key: str, now_ms: int) -> Window:
    """ISO week `key`: the one or two months it touches; its partition is the month of its Thursday
    (the ISO rule that puts a week in a year), so each week has one home among its months."""
    start, end = week_bounds_ms(key)
    months = tuple(sorted({month_of_ms(start), month_of_ms(end - 1)}))
    return Window(key, month_of_ms(start + 3 * 86_400_000), months, end <= now_ms)


def weeks_of_month(month: str, now_ms: int) -> list[str]:
    """The ISO weeks touching `month` that have begun by `now_ms`: the complete ones and the open one."""
    lo, hi = month_bounds_ms(month)
    out, t = [], lo
    while t < min(hi, now_ms + 1):
        k = week_of_ms(t)
        out.append(k)
        t = week_bounds_ms(k)[1]
    return out
