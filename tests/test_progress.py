"""The terminal progress bar: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from ingest.progress import ProgressBar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_on_a_terminal_and_ends_the_line_when_done() -> None:
    out = _Tty()
    bar = ProgressBar("pull f", out, width=10)
    bar(5, 10, 1234)
    bar(10, 10, 2000)
    text = out.getvalue()
    assert "\rpull f [#####.....] 5/10 windows 1,234 pings" in text
    assert text.endswith("[##########] 10/10 windows 2,000 pings\n")


def test_is_silent_when_not_a_terminal() -> None:
    out = io.StringIO()
    ProgressBar("pull f", out)(10, 10, 5)
    assert out.getvalue() == ""
