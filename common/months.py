"""UTC calendar months as half-open millisecond ranges."""

from __future__ import annotations

from datetime import datetime, timezone


def month_bounds_ms(month: str) -> tuple[int, int]:
    """[start, end) of a UTC calendar month 'YYYY-MM' in epoch milliseconds."""
    y, m = int(month[:4]), int(month[5:7])
    start = datetime(y, m, 1, tzinfo=timezone.utc)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
