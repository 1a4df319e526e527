"""Monthly plots as SVG, drawn on the server.

Why SVG from Python rather than a charting library in the browser: a few dozen points per plot
need no library, the page works with scripts off and under a strict CSP, nothing is vendored,
and a test can count the points in the HTML (one `circle.pt` per measured month, one `g.na`
marker per month that could not be measured, one `g.bar` per month of a stacked plot).

What an underwriter reads off a plot at a glance:

- the y axis has 4 to 6 ticks on round numbers (`nice_ticks`: steps of 1, 2, 2.5 or 5 x 10^k,
  from zero), a gridline at each, and a title that says the unit; x labels are `YYYY-MM`, thinned
  so that they never overlap;
- the open (current) month is drawn apart: a shaded column marked "open", its point hollow and not
  joined to the line, its bar pale. Its figures are to date: joined to the complete months, a
  month a third gone would read as a plunge in miles and hours. It does not set the scale either
  (a to-date rate over few miles can spike); a value over the top is drawn at the top with an arrow,
  its true value in the point's title and data;
- a value that could not be measured is a cross on the axis with the reason, never a zero.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

from ingest.surfaces.console.featuredata import Plot

W, H = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 22, 50
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")
OTHER_COLOUR = "#9a9a9a"  # "other" (and "outside US states") stay grey: they are not one state
LABEL_PX = 70  # room an x label (`YYYY-MM` at the tick font, 15 units on a phone) needs, in viewBox units


def nice_ticks(top: float) -> list[float]:
    """Ticks from 0 to a round number at or above `top`: 4 to 6 of them, a step of 1, 2, 2.5 or 5 x 10^k.

    Why those steps: between neighbours the step grows at most 2.5-fold, so the smallest step that
    needs at most 5 intervals needs at least 3 (4 to 6 ticks), and every label is a number a person
    reads without arithmetic.
    """
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    exp = math.floor(math.log10(top / 5))
    for k in (exp - 1, exp, exp + 1):
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * 10.0 ** k
            n = math.ceil(top / step - 1e-9)
            if n <= 5:
                return [round(i * step, 10) for i in range(n + 1)]
    raise AssertionError(f"no tick step for {top}")  # unreachable: 10^(exp+2) > top


def tick_label(v: float, step: float, top: float) -> str:
    """A tick's number, as few digits as its step needs; in thousands (`k`) on an axis that reaches 10,000."""
    if v == 0:
        return "0"
    if top >= 10_000:
        v, step = v / 1000, step / 1000
        suffix = "k"
    else:
        suffix = ""
    decimals = next(d for d in range(6) if abs(round(step, d) - step) < 1e-9 * max(1.0, step))
    return f"{v:,.{decimals}f}{suffix}"


def value_label(v: float) -> str:
    """A measured value in a tooltip: three significant figures or whole numbers."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"


def label_months(months: tuple[str, ...], step: float) -> set[int]:
    """Which months get an x label: every k-th, counted back from the newest (always labelled)."""
    every = max(1, math.ceil(LABEL_PX / step)) if step > 0 else 1
    n = len(months)
    return {i for i in range(n) if (n - 1 - i) % every == 0}


def render(plot: Plot, months: tuple[str, ...], open_months: frozenset[str] = frozenset()) -> Markup:
    n = len(months)
    closed = [i for i, m in enumerate(months) if m not in open_months]
    scale_on = closed or list(range(n))  # the open month sets the scale only when it is all there is
    if plot.stacked:
        totals = [sum(s.points[i].value or 0.0 for s in plot.series) for i in range(n)]
        hi = max((totals[i] for i in scale_on), default=0.0)
    else:
        hi = max((v for s in plot.series for i in scale_on if (v := s.points[i].value) is not None), default=0.0)
    ticks = nice_ticks(hi)
    top = ticks[-1]
    step = (W - LEFT - RIGHT) / max(n, 1)
    base_y = H - BOTTOM

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        return TOP + (base_y - TOP) * (1 - min(v, top) / top)

    unit = escape(plot.unit)
    out = [f'<svg class="plot" data-plot="{escape(plot.key)}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(plot.title)}, {escape(plot.axis or plot.unit)} by month" '
           'xmlns="http://www.w3.org/2000/svg">']
    for i, m in enumerate(months):  # the open month's column first, under everything else
        if m in open_months:
            out.append(f'<g class="open-month" data-month="{m}"><rect class="open-band" x="{x(i) - step / 2:.1f}" '
                       f'y="{TOP}" width="{step:.1f}" height="{base_y - TOP:.1f}"/>'
                       f'<text class="open-label" x="{x(i):.1f}" y="{TOP - 6}" text-anchor="middle">open</text>'
                       f'<title>{m} is still open: its figures are to date</title></g>')
    tick_step = ticks[1] - ticks[0]
    for t in ticks:
        ty = y(t)
        out.append(f'<line class="{"axis" if t == 0 else "gridline"}" x1="{LEFT}" y1="{ty:.1f}" x2="{W - RIGHT}" '
                   f'y2="{ty:.1f}"/><text class="tick" data-tick="{t!r}" x="{LEFT - 6}" y="{ty + 4:.1f}" '
                   f'text-anchor="end">{tick_label(t, tick_step, top)}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base_y}"/>')
    mid = (TOP + base_y) / 2
    out.append(f'<text class="axis-title" x="14" y="{mid:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {mid:.1f})">{escape(plot.axis or plot.unit)}</text>')
    labelled = label_months(months, step)
    for i, m in enumerate(months):
        if i in labelled:
            out.append(f'<text class="tick month" x="{x(i):.1f}" y="{base_y + 16}" text-anchor="middle">'
                       f'{escape(m)}</text>')
    out.append(f'<text class="axis-title" x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 8}" text-anchor="middle">'
               'month (UTC)</text>')

    if plot.stacked:
        bar_w = step * 0.7
        for i, m in enumerate(months):
            is_open = m in open_months
            out.append(f'<g class="bar{" open" if is_open else ""}" data-month="{m}">')
            base = 0.0
            for k, s in enumerate(plot.series):
                v = s.points[i].value or 0.0
                if v > 0:
                    lo, hi_v = y(base), y(base + v)
                    out.append(f'<rect class="seg" data-series="{escape(s.name)}" x="{x(i) - bar_w / 2:.1f}" '
                               f'y="{hi_v:.1f}" width="{bar_w:.1f}" height="{max(0.0, lo - hi_v):.1f}" '
                               f'fill="{colour(plot, k)}"><title>{m} {escape(s.name)}: {value_label(v)} {unit}'
                               f'{" (to date: the month is open)" if is_open else ""}</title></rect>')
                base += v
            if base > top:
                out.append(_over(x(i), m, base, plot.unit))
            out.append("</g>")
    else:
        for k, s in enumerate(plot.series):
            c = colour(plot, k)
            # The line joins complete months only; a gap (a month not measured) breaks it.
            d, pen = [], "M"
            for i, p in enumerate(s.points):
                if p.value is None or months[i] in open_months:
                    pen = "M"
                    continue
                d.append(f"{pen}{x(i):.1f},{y(p.value):.1f}")
                pen = "L"
            if sum(1 for seg in d if seg.startswith("L")):
                out.append(f'<path class="line" d="{" ".join(d)}" stroke="{c}" fill="none"/>')
            for i, p in enumerate(s.points):
                label = f"{p.month} {s.name}"
                if p.value is None:
                    # Not measurable (or not computed): marked on the axis, never drawn as a zero.
                    out.append(f'<g class="na" data-month="{p.month}" data-series="{escape(s.name)}">'
                               f'<text x="{x(i):.1f}" y="{base_y - 4}" text-anchor="middle" fill="{c}">'
                               f'\u00d7</text><title>{escape(label)}: n/a, {escape(p.note or "not measurable")}'
                               f'</title></g>')
                    continue
                is_open = p.month in open_months
                note = f" ({escape(p.note)})" if p.note else ""
                to_date = " so far: the month is still open" if is_open else ""
                fill = "#fff" if is_open else c
                out.append(f'<circle class="pt{" open" if is_open else ""}" data-month="{p.month}" '
                           f'data-series="{escape(s.name)}" data-value="{p.value!r}" cx="{x(i):.1f}" '
                           f'cy="{y(p.value):.1f}" r="4" fill="{fill}" stroke="{c}" stroke-width="2">'
                           f'<title>{escape(label)}: {value_label(p.value)} {unit}{note}{to_date}</title></circle>')
                if p.value > top:
                    out.append(_over(x(i), p.month, p.value, plot.unit))
    out.append("</svg>")
    return Markup("".join(out))


def _over(cx: float, month: str, value: float, unit: str) -> str:
    """A value above the scale (an open month's to-date rate): an arrow at the top, the value in words."""
    return (f'<g class="over" data-month="{month}"><text x="{cx:.1f}" y="{TOP + 10}" text-anchor="middle">\u25b2'
            f'</text><title>{month}: {value_label(value)} {escape(unit)}, above the scale</title></g>')


def colour(plot: Plot, k: int) -> str:
    name = plot.series[k].name
    if plot.stacked and (name.startswith("other") or name == "outside US states"):
        return OTHER_COLOUR
    return COLOURS[k % len(COLOURS)]


def legend(plot: Plot) -> Markup:
    """The series' names; a stacked plot's also with each one's share of the whole ("TX 62%"), so that
    the segments read without hovering."""
    total = sum(p.value or 0.0 for s in plot.series for p in s.points) if plot.stacked else 0.0

    def share(k: int) -> str:
        if not total:
            return ""
        part = sum(p.value or 0.0 for p in plot.series[k].points) / total * 100
        return f' <span class="share">{part:.0f}%</span>' if part >= 0.5 else ' <span class="share">&lt;1%</span>'

    items = "".join(f'<li data-series="{escape(s.name)}"><svg width="10" height="10" aria-hidden="true">'
                    f'<rect width="10" height="10" fill="{colour(plot, k)}"/></svg> {escape(s.name)}{share(k)}</li>'
                    for k, s in enumerate(plot.series))
    return Markup(f'<ul class="legend">{items}</ul>')
