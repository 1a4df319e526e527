"""The quote window and the book (issue 24): trailing windows planned incrementally, from the manifest.

Two fleets, four months, then a monthly refresh (the next month lands, the clock moves a month):
the quote window (the last 3 complete months here) reruns once per fleet, the book's percentiles
once; a pass with nothing new runs neither. The summary's figures say how many months they cover.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from ingest.engine.runs import run_features
from ingest.flows.registry import active_flows
from partitions import Manifest
from partitions.store import LocalStore
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

FLEETS = ("fleet-a", "fleet-b")


def _ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp() * 1000)


def _runs(m: Manifest, flow: str) -> list[tuple[str, str]]:
    return sorted((r.fleet_id, r.window_key) for r in m.runs(flow) if r.status == "succeeded")


def test_after_a_monthly_refresh_the_quote_window_reruns_once_per_fleet_and_the_book_once(tmp_path: Path) -> None:
    flows = active_flows(None)  # the month flows, the quote and the book (config/flows.toml)
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        for i, fleet in enumerate(FLEETS):
            write(store, m, [sim_table(simulator(vehicles=2, seed=3 + i), ["2025-01", "2025-02", "2025-03", "2025-04"],
                                       fleet_id=fleet)], tmp_path, fleet=fleet)

        def run(now_ms: int) -> None:
            rep = run_features(m, flows, store.url, None, tmp_path / "c", now_ms, quote_months=3)
            assert not rep.failed, [r.error for r in rep.failed]

        run(_ms(2025, 5, 15))
        assert _runs(m, "quote_summary") == [(f, "q3:2025-04") for f in FLEETS]
        assert _runs(m, "quote_book") == [("book", "book:q3:2025-04")]
        run(_ms(2025, 5, 20))  # nothing new
        assert len(_runs(m, "quote_summary")) == 2 and len(_runs(m, "quote_book")) == 1

        for i, fleet in enumerate(FLEETS):  # the monthly refresh: May lands, the clock is in June
            write(store, m, [sim_table(simulator(vehicles=2, seed=3 + i), ["2025-05"], fleet_id=fleet)], tmp_path,
                  fleet=fleet)
        run(_ms(2025, 6, 10))
        assert _runs(m, "quote_summary") == sorted([(f, k) for f in FLEETS for k in ("q3:2025-04", "q3:2025-05")])
        assert _runs(m, "quote_book") == [("book", "book:q3:2025-04"), ("book", "book:q3:2025-05")]

        [summary] = [r for r in m.latest_runs() if r.flow == "quote_summary" and r.fleet_id == "fleet-a"
                     and r.window_key == "q3:2025-05"]
        row = pq.read_table(store.path(summary.outputs[0])).to_pylist()[0]
        assert (row["first_month"], row["last_month"], row["window_months"]) == ("2025-03", "2025-05", 3)
        assert row["complete_window"] and row["miles_months"] == 3 and row["miles"] > 0
        assert abs(sum(s["share"] for s in row["state_shares"]) - 1.0) < 1e-9
        for fig in ("harsh", "speeding", "night"):  # a number, or null with its reason
            value = row[f"{fig}_per_1000_mi"] if fig != "night" else row["night_share"]
            assert (value is None) == (row[f"{fig}_reason"] is not None), (fig, row)
        [book] = [r for r in m.latest_runs() if r.flow == "quote_book" and r.window_key == "book:q3:2025-05"]
        ranks = pq.read_table(store.path(book.outputs[0])).to_pylist()
        miles = {r["fleet_id"]: r for r in ranks if r["figure"] == "miles"}
        assert set(miles) == set(FLEETS) and all(r["fleets_compared"] == 1 for r in miles.values())
        assert sorted(r["percentile"] for r in miles.values()) == [0.0, 100.0]  # the one with more miles is above

        # what GET /fleets/<id>/quote, `fleetlake status --fleet` and the console's quote page show
        from ingest.reads.quote import quote_of

        q = quote_of(m, store, "fleet-a", tmp_path / "cache")
        assert q is not None and q.window == "q3:2025-05" and q.complete_window
        by = {f.name: f for f in q.figures}
        assert by["miles"].value == row["miles"] and by["miles"].months == 3
        assert by["miles"].percentile in (0.0, 100.0) and by["miles"].fleets_compared == 1
        assert by["radius_class"].percentile is None and by["radius_class"].percentile_reason
        assert all((f.value is None) == (f.reason is not None) for f in q.figures)
        assert quote_of(m, store, "fleet-c", tmp_path / "cache") is None
