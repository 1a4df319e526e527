"""UTC calendar months as half-open millisecond ranges."""

from __future__ import annotations

from datetime import datetime, timezone


def month_bounds_ms(month: str) -> tuple[int, int]:
    """[start, end) of a UTC calendar month 'YYYY-MM' in epoch milliseconds."""
    y, m = int(month[:4]), int(month[5:7])
    start = datetime(y, m, 1, tzinfo=timezone.utc)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_of_ms(ms: int) -> str:
    """The UTC calendar month 'YYYY-MM' holding the instant `ms`."""
    d = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return f"{d.year:04d}-{d.month:02d}"


def months_between(start_ms: int, end_ms: int) -> list[str]:
    """The months that [start_ms, end_ms) touches, oldest first."""
    if end_ms <= start_ms:
        return []
    out = [month_of_ms(start_ms)]
    while (nxt := month_bounds_ms(out[-1])[1]) < end_ms:
        out.append(month_of_ms(nxt))
    return out
