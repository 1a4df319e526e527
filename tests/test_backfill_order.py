"""The order a backfill pulls months in: newest complete first, back month by month, open month last."""

from __future__ import annotations

from common.months import month_bounds_ms, months_between
from ingest.pull.backfill import backfill_months, by_month, plan_slices

WEEK = 7 * 86_400_000


def test_complete_months_newest_first_then_the_open_month() -> None:
    start, _ = month_bounds_ms("2025-10")
    now = month_bounds_ms("2026-03")[0] + 14 * 86_400_000
    assert backfill_months(start, now) == ["2026-02", "2026-01", "2025-12", "2025-11", "2025-10", "2026-03"]
    # On the first instant of a month, the month before is complete and the new one is open.
    assert backfill_months(start, month_bounds_ms("2026-03")[0] + 1)[:2] == ["2026-02", "2026-01"]
    assert months_between(start, start) == []


def test_every_slice_goes_once_with_the_newest_month_it_touches() -> None:
    start, _ = month_bounds_ms("2025-10")
    now = month_bounds_ms("2026-03")[0] + 14 * 86_400_000
    slices = plan_slices(["a", "b"], start, now, WEEK, set())
    groups = by_month(slices, backfill_months(start, now))
    keys = [w.key for _, g in groups for w in g]
    assert sorted(keys) == sorted(w.key for w in slices)  # each slice exactly once
    seen: set[str] = set()
    for month, group in groups:
        lo, hi = month_bounds_ms(month)
        assert all(w.start_ms < hi and w.end_ms > lo for w in group)
        # ...and when a month's group is done, no later group touches that month again.
        assert not any(w.start_ms < month_bounds_ms(m)[1] and w.end_ms > month_bounds_ms(m)[0]
                       for w in group for m in seen), month
        seen.add(month)


def test_a_resume_skips_completed_slices_and_keeps_the_order() -> None:
    start, _ = month_bounds_ms("2025-10")
    now = month_bounds_ms("2026-03")[0] + 14 * 86_400_000
    order = backfill_months(start, now)
    first = by_month(plan_slices(["a"], start, now, WEEK, set()), order)
    done = {w.key for _, g in first[:3] for w in g}
    again = by_month(plan_slices(["a"], start, now, WEEK, done), order)
    assert [m for m, g in again if g][0] == "2025-11" and all(not g for _, g in again[:3])
