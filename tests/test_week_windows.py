"""ISO-week windows (issue 24 item 4): a week flow over raw pings, planned incrementally from the
manifest like months, run by the real engine on sandbox-simulated pings.

Three months of one fleet (2025-04..06) and a clock in the open week 2025-W27: weekly_miles@1 runs
for every ISO week the data touches, each week's row equals the same walk over that week's pings
alone, a pass with nothing new runs nothing, and new May pings rerun exactly the weeks that touch
May (2025-W18, straddling April, to 2025-W22, straddling June).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from common.errors import ConfigError
from ingest.engine.runs import run_features
from ingest.engine.windows import week_bounds_ms
from ingest.flows import registry, walk
from ingest.flows.base import FlowInput
from ingest.flows.registry import builtin, resolve
from partitions import Manifest, layout
from partitions.delta import lake_for
from partitions.reader import read_month
from partitions.store import LocalStore
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

FLEET = "fleet-a"
MONTHS = ["2025-04", "2025-05", "2025-06"]
NOW = int(datetime(2025, 7, 2, 12, tzinfo=timezone.utc).timestamp() * 1000)  # Wednesday of 2025-W27
WEEKS = [f"2025-W{w:02d}" for w in range(14, 28)]  # W14 starts on 2025-03-31; W27 touches July


def _weeks_run(m: Manifest) -> list[str]:
    return [r.window_key for r in m.runs("weekly_miles") if r.status == "succeeded"]


def _expected(store: LocalStore, m: Manifest, cache: Path, week: str, months: list[str]) -> dict:
    """The same walk over the committed pings of `week` only, read from its months directly."""
    lo, hi = week_bounds_ms(week)
    pings = pa.concat_tables(read_month(store, m, FLEET, mo, cache) for mo in months)
    ts = pc.cast(pings["ts"], pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    inside = pings.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
    flow = builtin()[("weekly_miles", 1)]
    [row] = walk.compute(flow, FlowInput(FLEET, week, {"pings": inside}, hi <= NOW)).to_pylist()
    return row


def _outputs(store: LocalStore, m: Manifest) -> dict[str, dict]:
    out = {}
    for r in m.runs("weekly_miles"):  # oldest first: the newest run of each week wins
        if r.status == "succeeded":
            [row] = pq.read_table(store.path(r.outputs[0])).to_pylist()
            out[r.window_key] = row
    live = {f.key for fs in lake_for(store).live_files(layout.feature_table("weekly_miles", 1)).values() for f in fs}
    newest = {r.window_key: r.outputs[0] for r in m.runs("weekly_miles") if r.status == "succeeded"}
    assert live == set(newest.values())  # the Delta table holds each week's newest file, and only those
    return out


def test_weeks_run_for_each_iso_week_and_rerun_exactly_where_a_month_changed(tmp_path: Path) -> None:
    flows = resolve(["weekly_miles@1"])
    store = LocalStore(tmp_path / "store")
    cache = tmp_path / "cache"
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(vehicles=2, interval=60, seed=5), MONTHS, fleet_id=FLEET)], tmp_path)

        def run() -> list[str]:
            rep = run_features(m, flows, store.url, None, tmp_path / "c", NOW)
            assert not rep.failed, [r.error for r in rep.failed]
            return sorted(r.window_key for r in rep.results)

        assert run() == WEEKS
        got = _outputs(store, m)
        assert sorted(got) == WEEKS
        for week in WEEKS:
            assert got[week] == pytest.approx(_expected(store, m, cache, week, MONTHS)), week
        assert [got[w]["complete_week"] for w in WEEKS] == [True] * 13 + [False]  # W27 is open
        assert all(got[w]["miles"] > 0 and got[w]["active_vehicles"] == 2 for w in WEEKS)

        # 2025-W18 (Mon Apr 28 - Sun May 4) reads both months: its miles are more than either month's part
        w18 = got["2025-W18"]["miles"]
        assert w18 > _expected(store, m, cache, "2025-W18", ["2025-04"])["miles"] > 0
        assert w18 > _expected(store, m, cache, "2025-W18", ["2025-05"])["miles"] > 0

        assert run() == []  # nothing changed: no week reruns
        before = len(_weeks_run(m))

        # new pings in May (a third vehicle): exactly the weeks touching May rerun
        sim3 = simulator(vehicles=3, interval=60, seed=5)
        write(store, m, [sim_table(sim3, ["2025-05"], fleet_id=FLEET, vehicles=[sim3.vehicles[2]])], tmp_path)
        assert run() == [f"2025-W{w:02d}" for w in range(18, 23)]
        assert len(_weeks_run(m)) == before + 5
        after = _outputs(store, m)
        assert sorted(after) == WEEKS  # each week's file replaced its own only
        for week in WEEKS:
            assert after[week] == pytest.approx(_expected(store, m, cache, week, MONTHS)), week
        assert after["2025-W20"]["active_vehicles"] == 3 and after["2025-W16"] == got["2025-W16"]
        assert run() == []


def test_a_week_flow_whose_inputs_cannot_be_planned_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    weekly = builtin()[("weekly_miles", 1)]
    on_flows = dataclasses.replace(weekly, name="weekly_on_flows", inputs=("distance@2",))
    reads_week = dataclasses.replace(builtin()[("quote_summary", 1)], name="reads_weeks", inputs=("weekly_miles@1",))
    have = {**registry.available(), ("weekly_on_flows", 1): on_flows, ("reads_weeks", 1): reads_week}
    monkeypatch.setattr(registry, "available", lambda: have)
    with pytest.raises(ConfigError, match="ISO week window reads raw datasets only"):
        resolve(["distance@2", "weekly_on_flows@1"])
    with pytest.raises(ConfigError, match="reads weekly_miles@1, an ISO week flow"):
        resolve(["weekly_miles@1", "reads_weeks@1"])
