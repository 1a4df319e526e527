"""The progress bar: months done of the history, pings, rate and ETA; a line per month off a terminal."""

from __future__ import annotations

import io

from ingest.pull.backfill import PullProgress
from ingest.surfaces.progress import ProgressBar, duration


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_months_pings_rate_and_eta_and_ends_the_line_when_done() -> None:
    out = _Tty()
    bar = ProgressBar("pull f", out, width=10)
    # 5 of 10 slices in 60 s: 1,234 pings a minute; 5 slices left at 12 s each is 1m00s.
    bar(PullProgress("f", "2024-05", 2, 4, 5, 10, 1234, 60.0))
    bar(PullProgress("f", None, 4, 4, 10, 10, 2000, 100.0))
    text = out.getvalue()
    assert "\rpull f [#####.....] 2/4 months on 2024-05, 1,234 pings, 1,234/min, ETA 1m00s" in text
    assert "[##########] 4/4 months, 2,000 pings, 1,200/min, ETA 0s" in text and text.endswith("\n")


def test_unknown_rate_and_eta_before_anything_landed() -> None:
    p = PullProgress("f", "2024-05", 0, 4, 0, 10, 0, 3.0)
    assert p.pings_per_min is None and p.eta_s is None and duration(p.eta_s) == "?"
    assert duration(7500) == "2h05m"


def test_off_a_terminal_it_writes_one_plain_line_per_month_completed() -> None:
    out = io.StringIO()
    bar = ProgressBar("pull f", out, width=4)
    bar(PullProgress("f", "2024-05", 0, 4, 1, 10, 5, 1.0))
    bar(PullProgress("f", "2024-05", 0, 4, 2, 10, 9, 2.0))  # the same month: no new line
    bar(PullProgress("f", "2024-04", 1, 4, 5, 10, 20, 5.0))
    bar(PullProgress("f", None, 4, 4, 10, 10, 40, 9.0))
    lines = out.getvalue().splitlines()
    assert [ln.split("] ")[1].split(" months")[0] for ln in lines] == ["0/4", "1/4", "4/4"]
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()
