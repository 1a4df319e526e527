"""quote_book's rules: percentiles of each fleet's quote figures among the fleets with a complete window.

Compared are the *other* fleets whose quote window is complete (every month has miles) and whose
figure is not null. A fleet's percentile is 100 x (compared fleets with a lower figure + half of
those with an equal one) / compared fleets: ties do not put a fleet above or below its equals.
"""

from __future__ import annotations

from typing import Any

from ingest.flows.base import FlowInput

FIGURES = ("miles", "harsh_per_1000_mi", "speeding_per_1000_mi", "night_share", "active_vehicles")


def percentiles(inp: FlowInput) -> list[dict[str, Any]]:
    table = inp.tables.get("quote_summary@1")
    rows = sorted(table.to_pylist(), key=lambda r: r["fleet_id"]) if table is not None else []
    out = []
    for figure in FIGURES:
        complete = [(r["fleet_id"], float(r[figure])) for r in rows if r["complete_window"] and r[figure] is not None]
        for r in rows:
            value = None if r[figure] is None else float(r[figure])
            others = [v for fid, v in complete if fid != r["fleet_id"]]
            if value is None:
                pct, reason = None, r.get(f"{figure}_reason") or "the figure is null"
            elif not others:
                pct, reason = None, "no other fleet with a complete quote window has this figure"
            else:
                lower = sum(v < value for v in others) + 0.5 * sum(v == value for v in others)
                pct, reason = 100.0 * lower / len(others), None
            if pct is not None and not r["complete_window"]:
                reason = f"this fleet's window covers {r['miles_months']} of {r['window_months']} months"
            out.append({"fleet_id": r["fleet_id"], "month": inp.month, "figure": figure, "value": value,
                        "percentile": pct, "fleets_compared": len(others), "reason": reason})
    return out
