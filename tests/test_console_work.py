"""What the console says about a fleet's work, over real HTTP (uvicorn on a free port): readiness and
freshness on the fleets page, the next retry of a failed fleet, the open month in the grid, a grid
cell's runs, a re-run from that cell (and who may ask for one), and the plots' words and numbers.

The manifest is written through its own writer; the runs are the planner's own windows recorded as
a feature pass records them, so "current" means what the planner means.
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.months import month_of_ms
from common.states import RunStatus, WorkOutcome
from ingest.engine.planner import plan
from ingest.runtime.app import App
from ingest.runtime.backoff import Backoffs
from ingest.surfaces.console.featuredata import Plot, Point, Series
from ingest.surfaces.console.plots import nice_ticks, render
from partitions.manifest import FlowRun, RawPartition
from tests.test_console import _console, _csrf, _login

FLEET = "acme-freight"


def _months_back(n: int) -> tuple[list[str], str]:
    """The `n` complete months before the open (current) one, and the open one."""
    now = datetime.now(timezone.utc)
    y, m = now.year, now.month
    out = []
    for _ in range(n):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        out.append(f"{y:04d}-{m:02d}")
    return sorted(out), month_of_ms(int(now.timestamp() * 1000))


def _land(app: App, complete: list[str], open_month: str) -> None:
    """acme-freight with pings and events in every month, its complete months pulled, and a current
    succeeded run of every active flow version in every month (the planner's windows, recorded)."""
    m = app.manifest
    start = datetime.strptime(complete[0], "%Y-%m").replace(tzinfo=timezone.utc)
    m.upsert_fleet(FLEET, "samsara", "active", history_start=start)  # type: ignore[arg-type]
    now = datetime.now(timezone.utc)
    for month in [*complete, open_month]:
        for dataset in ("pings", "events"):
            m.commit_raw(RawPartition(FLEET, dataset, month, 1, (f"raw/{dataset}/{FLEET}/{month}/part.parquet",),
                                      1000, 10_000, f"{dataset}-{month}", now))
    for month in complete:
        m.record_month_pulled(FLEET, month)
    for i, t in enumerate(plan(m, app.flows, FLEET)):
        at = now - timedelta(hours=2, seconds=i)
        m.record_run(FlowRun(f"run-{i}", t.flow, t.version, t.code_fp, FLEET, t.month, t.input_fp,
                             RunStatus.SUCCEEDED, (), {"rows": 3}, None, at, at + timedelta(seconds=1.5)))


def _row(html: str, fleet: str) -> str:
    return html.split(f'data-fleet="{fleet}"', 1)[1].split("</tr>", 1)[0]


def test_the_fleets_page_shows_readiness_freshness_and_a_failed_fleets_next_retry(tmp_path: Path) -> None:
    complete, open_month = _months_back(3)
    with _console(tmp_path) as (base, daemon):
        _land(daemon.app, complete, open_month)
        with _login(base) as c:
            acme = _row(c.get("/").text, FLEET)
            assert 'data-ready="3"' in acme and "ready to quote · 3 mo" in acme  # the latest 3 complete months
            assert ">3/3<" in acme and "3 of 6 months" in acme                    # the open month is not one
            assert "just now" in acme                                              # landed moments ago
            blue = _row(c.get("/").text, "bluebird-logistics")
            assert "not yet" in blue and "next retry at the daemon's next retry pass" in blue

            daemon.backoffs.record("backfill:bluebird-logistics", WorkOutcome.FAILED)
            daemon.backoffs.record("backfill:bluebird-logistics", WorkOutcome.FAILED)
            blue = _row(c.get("/").text, "bluebird-logistics")
            # retry_failed_s = 600 by default, doubled after the second failure in a row
            assert "next retry in 20 min" in blue and "(2 failed in a row)" in blue

            # A window of the newest complete month waits for a run: the span stops there.
            daemon.app.manifest.supersede_runs(FLEET, [("distance", 2)], complete[-1], "test")
            acme = _row(c.get("/").text, FLEET)
            assert 'data-ready="0"' in acme and f"waiting on {complete[-1]}" in acme and ">2/3<" in acme


def test_the_grid_marks_the_open_month_and_a_cell_opens_its_runs(tmp_path: Path) -> None:
    complete, open_month = _months_back(2)
    with _console(tmp_path) as (base, daemon):
        _land(daemon.app, complete, open_month)
        first = daemon.app.manifest.window_runs(FLEET, "distance", 2, complete[0])[0].run
        early = first.started_at - timedelta(hours=1)
        daemon.app.manifest.record_run(FlowRun("run-failed", "distance", 2, first.code_fp, FLEET, complete[0],
                                               first.input_fp, RunStatus.FAILED, (), {"rows": 0},
                                               "ValueError: the month's pings are out of order", early,
                                               early + timedelta(seconds=75)))
        with _login(base) as c:
            grid = c.get(f"/ui/fleets/{FLEET}").text
            rows = dict(re.findall(r'<tr data-month="(\d{4}-\d{2})"([^>]*)>', grid))
            assert set(rows) == {*complete, open_month}
            assert 'data-open="true"' in rows[open_month]
            assert all("data-open" not in rows[m] for m in complete)
            link = f'href="/ui/fleets/{FLEET}?flow=distance%402&amp;month={complete[0]}#window"'
            assert link in grid  # every cell opens its runs

            page = c.get(f"/ui/fleets/{FLEET}", params={"flow": "distance@2", "month": complete[0]}).text
            panel = page.split('id="window"', 1)[1].split("</section>", 1)[0]
            runs = re.findall(r'<tr data-run="([^"]+)" data-status="(\w+)">', panel)
            assert runs == [(first.run_id, "succeeded"), ("run-failed", "failed")]  # newest first
            assert "#2" in panel and "#1" in panel and "2 runs of this window" in panel
            assert "the month&#39;s pings are out of order" in panel and "1 min 15 s" in panel and "1.5 s" in panel
            assert c.get(f"/ui/fleets/{FLEET}", params={"flow": "nope@1", "month": complete[0]}).status_code == 404
            assert c.get(f"/ui/fleets/{FLEET}", params={"flow": "distance@2", "month": "20x"}).status_code == 400


def test_a_rerun_from_a_cell_sets_its_runs_aside_and_queues_their_month(tmp_path: Path) -> None:
    complete, open_month = _months_back(2)
    with _console(tmp_path) as (base, daemon):
        _land(daemon.app, complete, open_month)
        url = f"/ui/fleets/{FLEET}/rerun"
        with _login(base) as c:
            page = f"/ui/fleets/{FLEET}?flow=distance%402&month={complete[0]}"
            token = _csrf(c, page)
            form = {"csrf": token, "flow": "distance@2", "month": complete[0], "scope": "window"}
            for data, headers in (({**form, "csrf": ""}, {"Origin": base}),
                                  (form, {"Origin": "https://evil.example"}), (form, {})):
                assert c.post(url, data=data, headers=headers).status_code == 403
            assert daemon.queue.snapshot().queued == ()
            assert not [a for a in daemon.app.manifest.window_runs(FLEET, "distance", 2, complete[0])
                        if a.superseded_at]
            for bad in ({"flow": "nope@1"}, {"scope": "everything"}, {"month": "2025-13"}):
                assert c.post(url, data={**form, **bad}, headers={"Origin": base}).status_code == 400, bad

            r = c.post(url, data=form, headers={"Origin": base})
            assert r.status_code == 303 and r.headers["location"].endswith("rerun=1&scope=window#window")
            assert daemon.queue.snapshot().queued == (f"features:{FLEET}:{complete[0]}",)
            (attempt,) = daemon.app.manifest.window_runs(FLEET, "distance", 2, complete[0])
            assert attempt.superseded_by == "console" and attempt.superseded_at is not None
            shown = c.get(r.headers["location"]).text
            assert "1 succeeded run set aside" in shown and "set aside for a re-run" in shown
            cell = shown.split(f'<tr data-month="{complete[0]}"', 1)[1].split("</tr>", 1)[0]
            assert re.search(r'data-flow="distance@2" data-state="pending"', cell)  # it waits for its run
            assert 'data-flow="trips@3" data-state="done"' in cell                  # no other window

            r = c.post(url, data={**form, "scope": "month", "month": complete[1]}, headers={"Origin": base})
            month_flows = sum(1 for f in daemon.app.flows if f.window == "month")
            assert f"rerun={month_flows}&" in r.headers["location"]  # every month flow of that month
            r = c.post(url, data={**form, "scope": "flow", "flow": "speed@3"}, headers={"Origin": base})
            # speed@3 in every month: the two not set aside yet (its first month and the open one)
            assert "rerun=2&" in r.headers["location"]
            assert f"features:{FLEET}" in daemon.queue.snapshot().queued  # every month: the fleet's item


def test_the_state_plot_names_its_other_states_and_the_miles_outside_every_state(tmp_path: Path) -> None:
    complete, open_month = _months_back(2)
    states = {"TX": 900.0, "OK": 500.0, "NM": 300.0, "LA": 200.0, "AR": 150.0, "CO": 120.0, "KS": 30.0, "MO": 20.0,
              "--": 40.0}
    with _console(tmp_path) as (base, daemon):
        app = daemon.app
        _land(app, complete, open_month)
        dv = max(f.version for f in app.flows if f.name == "distance")  # the console plots the newest active version
        for month in complete:
            key = f"features/distance/v{dv}/fleet={FLEET}/month={month}/part-states.parquet"
            buf = io.BytesIO()
            pq.write_table(pa.table({"fleet_id": [FLEET] * len(states), "month": [month] * len(states),
                                     "vehicle_id": pa.array([None] * len(states), pa.string()),
                                     "state": list(states), "miles": list(states.values())}), buf)
            app.store.put(key, buf.getvalue())
            now = datetime.now(timezone.utc)
            app.manifest.record_run(FlowRun(f"states-{month}", "distance", dv, "c", FLEET, month, "i",
                                            RunStatus.SUCCEEDED, (key,), None, None, now, now))
        with _login(base) as c:
            html = c.get(f"/ui/fleets/{FLEET}/features").text
    plot = html.split('data-plot="miles_by_state"', 1)[1].split("</svg>", 1)[0]
    legend = html.split('id="plot-miles_by_state"', 1)[1].split("</figure>", 1)[0]
    named = set(re.findall(r'data-series="([^"]+)"', plot))
    assert named == {"TX", "OK", "NM", "LA", "AR", "CO", "other (2 states)", "outside US states"}
    assert "other (2 states)" in legend and "outside US states" in legend and "--" not in legend
    assert "% of driving hours" in html.split('data-plot="night_share"', 1)[1].split("</svg>", 1)[0]


MONTHS = ("2025-10", "2025-11", "2025-12", "2026-01")


def _plot(values: list[float | None], key: str = "miles") -> Plot:
    return Plot(key, "Miles", "mi", (Series("miles", tuple(Point(m, v) for m, v in zip(MONTHS, values))),),
                axis="miles")


def test_the_open_month_is_drawn_apart_and_never_as_a_drop() -> None:
    svg = str(render(_plot([2390.0, 2410.0, 2350.0, 610.0]), MONTHS, frozenset({"2026-01"})))
    path = re.search(r'<path class="line" d="([^"]+)"', svg)
    assert path is not None and path.group(1).count("L") == 2  # the three complete months, joined
    open_pt = re.search(r'<circle class="pt open" data-month="2026-01"[^>]*cx="([\d.]+)"', svg)
    assert open_pt is not None and open_pt.group(1) not in path.group(1)  # drawn, not joined
    assert '<g class="open-month" data-month="2026-01">' in svg and ">open</text>" in svg
    assert svg.count('class="pt"') == 3 and "so far: the month is still open" in svg
    # A to-date rate over few miles does not set the scale: it is drawn at the top with an arrow.
    spike = str(render(_plot([2.0, 3.1, 2.4, 40.0], "harsh"), MONTHS, frozenset({"2026-01"})))
    assert [float(t) for t in re.findall(r'data-tick="([\d.]+)"', spike)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert '<g class="over" data-month="2026-01">' in spike and "40.0 mi, above the scale" in spike


def test_a_plot_has_round_ticks_gridlines_axis_titles_and_full_month_labels() -> None:
    svg = str(render(_plot([2390.0, 2410.0, None, 1780.0]), MONTHS))
    ticks = [float(t) for t in re.findall(r'data-tick="([\d.]+)"', svg)]
    assert ticks == [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0]
    assert svg.count('class="gridline"') == len(ticks) - 1  # one per tick above the axis
    labels = re.findall(r'<text class="tick month"[^>]*>([^<]+)</text>', svg)
    assert labels == list(MONTHS)
    assert ">miles</text>" in svg and ">month (UTC)</text>" in svg
    assert ">2,500</text>" in svg and "2390" not in re.sub(r'data-value="[^"]*"', "", svg.split("<circle", 1)[0])
    # 24 months: the labels thin out (the newest always kept) so that none overlap.
    many = tuple(f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(24))
    svg = str(render(Plot("miles", "Miles", "mi", (Series("miles", tuple(Point(m, 1.0) for m in many)),)), many))
    labels = re.findall(r'<text class="tick month"[^>]*>([^<]+)</text>', svg)
    assert labels[-1] == many[-1] and 4 <= len(labels) <= 8 and all(re.fullmatch(r"\d{4}-\d{2}", x) for x in labels)


@pytest.mark.parametrize("top", [0.0, 0.004, 0.37, 1.0, 3.3, 7.0, 9.99, 10.0, 42.0, 99.0, 101.0, 610.0, 2410.0,
                                 12_345.0, 99_999.0, 1.7e6])
def test_nice_ticks_are_four_to_six_round_numbers_from_zero_that_cover_the_top(top: float) -> None:
    ticks = nice_ticks(top)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert 4 <= len(ticks) <= 6 and ticks[0] == 0
    assert any(abs(mantissa - m) < 1e-9 for m in (1, 2, 2.5, 5)), (top, step)
    assert ticks[-1] >= top and (top == 0 or ticks[-2] < top)  # the last tick is needed, none beyond
    assert all(abs((b - a) - step) < 1e-9 * max(1.0, step) for a, b in zip(ticks, ticks[1:]))


def test_the_daemons_backoff_doubles_per_failure_and_a_success_clears_it() -> None:
    b = Backoffs(600)
    assert b.next_retry("backfill:f") is None and b.waited_out("backfill:f")
    t0 = time.time()
    for n in (1, 2, 3):
        b.record("backfill:f", WorkOutcome.FAILED)
        r = b.next_retry("backfill:f")
        assert r is not None and r.failures == n
        assert 600 * 2 ** (n - 1) <= r.not_before.timestamp() - t0 <= 600 * 2 ** (n - 1) + 60
    assert not b.waited_out("backfill:f")
    b.record("backfill:f", WorkOutcome.STOPPED)  # a stop is no verdict either way
    assert b.next_retry("backfill:f") is not None
    b.record("backfill:f", WorkOutcome.OK)
    assert b.next_retry("backfill:f") is None and b.waited_out("backfill:f")


def test_the_features_page_has_a_sortable_drivers_table_with_the_unassigned_share(tmp_path: Path) -> None:
    from ingest.flows.drivers.schema import SCHEMA as DRIVERS

    complete, open_month = _months_back(2)
    month = complete[-1]
    rows = [{"driver_id": "900001", "miles": 2400.0, "driving_hours": 50.0, "share_of_fleet_driving": 0.5,
             "night_share": 0.1, "harsh_per_1000mi": 1.25, "speeding_per_1000mi": 0.5, "violations_break_30": 2,
             "violations_driving_11": 1},
            {"driver_id": "900002", "miles": 1900.0, "driving_hours": 37.5, "share_of_fleet_driving": 0.375,
             "night_share": 0.0, "harsh_per_1000mi": None, "harsh_reason": "fewer than 100 miles",
             "speeding_per_1000mi": 0.0, "violations_break_30": 0},
            {"driver_id": None, "miles": 600.0, "driving_hours": 12.5, "share_of_fleet_driving": 0.125}]
    table = pa.Table.from_pylist([{"fleet_id": FLEET, "month": month, "complete_month": True, **r} for r in rows],
                                 schema=DRIVERS)
    with _console(tmp_path) as (base, daemon):
        app = daemon.app
        _land(app, complete, open_month)
        key = f"features/drivers/v1/fleet={FLEET}/month={month}/part-d.parquet"
        buf = io.BytesIO()
        pq.write_table(table, buf)
        app.store.put(key, buf.getvalue())
        now = datetime.now(timezone.utc)
        app.manifest.record_run(FlowRun(f"drivers-{month}", "drivers", 1, "c", FLEET, month, "i",
                                        RunStatus.SUCCEEDED, (key,), None, None, now, now))
        with _login(base) as c:
            html = c.get(f"/ui/fleets/{FLEET}/features").text
    drivers = html.split('id="drivers"', 1)[1].split("</table>", 1)[0]
    assert 'class="sortable"' in html.split('id="drivers"', 1)[0].rsplit("<table", 1)[1]
    assert re.findall(r'data-driver="([^"]*)"', drivers) == ["900001", "900002", ""]
    assert "12.5% of the fleet's driving hours" in html
    assert "<em>unassigned</em>" in drivers and 'title="fewer than 100 miles"' in drivers
    assert "3 <small>(1/0/2/0/0/0)</small>" in drivers
