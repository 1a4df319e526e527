"""Monthly plots as SVG, drawn on the server.

Why SVG from Python rather than a charting library in the browser: a few dozen points per plot
need no library, the page works with scripts off and under a strict CSP, nothing is vendored,
and a test can count the points in the HTML (one `circle.pt` per measured month, one `g.na`
marker per month that could not be measured, one `g.bar` per month of a stacked plot).
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from ingest.surfaces.console.featuredata import Plot

W, H = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) < 10 else f"{v:,.1f}"


def render(plot: Plot, months: tuple[str, ...]) -> Markup:
    n = len(months)
    if plot.stacked:
        totals = [sum(s.points[i].value or 0.0 for s in plot.series) for i in range(n)]
        top = max(totals, default=0.0)
    else:
        top = max((p.value for s in plot.series for p in s.points if p.value is not None), default=0.0)
    top = top * 1.1 or 1.0
    step = (W - LEFT - RIGHT) / max(n, 1)

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - v / top)

    out = [f'<svg class="plot" data-plot="{escape(plot.key)}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(plot.title)}" xmlns="http://www.w3.org/2000/svg">',
           f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
           f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>',
           f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_fmt(top)}</text>',
           f'<text class="tick" x="{LEFT - 4}" y="{H - BOTTOM}" text-anchor="end">0</text>']
    label_every = max(1, n // 12)
    for i, m in enumerate(months):
        if i % label_every == 0:
            out.append(f'<text class="tick" x="{x(i):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">'
                       f'{escape(m[2:])}</text>')
    if plot.stacked:
        bar_w = step * 0.7
        for i, m in enumerate(months):
            out.append(f'<g class="bar" data-month="{m}">')
            base = 0.0
            for k, s in enumerate(plot.series):
                v = s.points[i].value or 0.0
                if v > 0:
                    out.append(f'<rect class="seg" data-series="{escape(s.name)}" x="{x(i) - bar_w / 2:.1f}" '
                               f'y="{y(base + v):.1f}" width="{bar_w:.1f}" height="{y(base) - y(base + v):.1f}" '
                               f'fill="{COLOURS[k % len(COLOURS)]}"><title>{m} {escape(s.name)}: {_fmt(v)} '
                               f'{escape(plot.unit)}</title></rect>')
                base += v
            out.append("</g>")
    else:
        for k, s in enumerate(plot.series):
            colour = COLOURS[k % len(COLOURS)]
            coords = [(x(i), y(p.value)) for i, p in enumerate(s.points) if p.value is not None]
            if len(coords) > 1:
                d = " ".join(f"{'M' if j == 0 else 'L'}{cx:.1f},{cy:.1f}" for j, (cx, cy) in enumerate(coords))
                out.append(f'<path class="line" d="{d}" stroke="{colour}" fill="none"/>')
            for i, p in enumerate(s.points):
                label = f"{p.month} {s.name}"
                if p.value is None:
                    # Not measurable (or not computed): marked on the axis, never drawn as a zero.
                    out.append(f'<g class="na" data-month="{p.month}" data-series="{escape(s.name)}">'
                               f'<text x="{x(i):.1f}" y="{H - BOTTOM - 4}" text-anchor="middle" fill="{colour}">'
                               f'\u00d7</text><title>{escape(label)}: n/a, {escape(p.note or "not measurable")}'
                               f'</title></g>')
                else:
                    note = f" ({escape(p.note)})" if p.note else ""
                    out.append(f'<circle class="pt" data-month="{p.month}" data-series="{escape(s.name)}" '
                               f'data-value="{p.value!r}" cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5" '
                               f'fill="{colour}"><title>{escape(label)}: {_fmt(p.value)} {escape(plot.unit)}{note}'
                               f'</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def legend(plot: Plot) -> Markup:
    items = "".join(f'<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
                    f'fill="{COLOURS[k % len(COLOURS)]}"/></svg> {escape(s.name)}</li>'
                    for k, s in enumerate(plot.series))
    return Markup(f'<ul class="legend">{items}</ul>')
