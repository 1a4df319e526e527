"""Drivers and hours of service pulled from the sandbox over real HTTP, month by month, into the lake.

The sandbox's crews (sandbox/crew.py) are the truth: what lands must be what the TSP knew at the
pull's clock, a month re-pulled whole replaces what was committed, and months that can no longer
change are checkpointed (a refresh does not pull them again).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pytest
from cryptography.fernet import Fernet

from common.months import month_bounds_ms, month_of_ms
from connectors.oauth import Vault
from ingest.pull.backfill import PullOptions, pull_fleet
from ingest.pull.hos_datasets import HosPull
from partitions import Manifest, read_month, read_snapshot
from partitions.store import LocalStore
from partitions.writer import MonthWriter
from sandbox.crew import Crew, Edit
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.test_pull_sandbox import connect

DAY_S = 86_400


def late_edit(crew: Crew) -> tuple[int, int, Edit]:
    """(vehicle, day, edit) of the first late log edit whose day's month ended before it shows."""
    sim = crew.sim
    for v in sim.vehicles:
        first = sim.day_of(v, sim.spec.history_start_s) + 31  # a month before it stays as it was
        for day in range(first, first + 45):
            cd = crew.day(v, day)
            if cd.edit is None:
                continue
            month = month_of_ms(cd.stretches[0].start_s * 1000)
            if month_bounds_ms(month)[1] // 1000 < cd.edit.visible_s - 3600:
                return v.index, day, cd.edit
    raise AssertionError("the crew has no late edit across a month's end")


def set_clock(server: SandboxServer, ts_s: int) -> None:
    now = datetime.fromtimestamp(ts_s, timezone.utc).isoformat()
    assert loopback.post(f"{server.base_url}/_sandbox/clock", json={"now": now}).status_code == 200


@pytest.mark.parametrize("tsp,fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_a_late_log_edit_lands_in_a_refresh_and_changes_only_its_month(tmp_path: Path, tsp: str, fleet: str) -> None:
    cfg = default_config(seed=11, vehicles=6, ping_interval_s=60, history_months=3, now=NOW)
    with SandboxServer(replace(cfg, samsara_rate_per_s=1000.0, motive_rate_per_s=1000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        store = LocalStore(tmp_path / "lake")
        crew = server.world.crew(fleet)
        vi, day, edit = late_edit(crew)
        set_clock(server, edit.visible_s - 3600)
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        start = crew.sim.spec.history_start_s * 1000
        hos = HosPull(lookback_ms=3 * DAY_S * 1000)
        before = server.world.clock.now_ms()
        pull_fleet(connector, store, manifest, fleet, start, before, PullOptions(hos=hos))

        month = month_of_ms(crew.day(crew.sim.vehicles[vi], day).stretches[0].start_s * 1000)
        months = [p.month for p in manifest.raw_partitions(fleet, "assignments")]
        assert month in months and len(months) >= 2
        seq = {m: manifest.raw_partition(fleet, "assignments", m).seq for m in months}  # type: ignore[union-attr]
        vid = crew.sim.vehicles[vi].vehicle_id
        lo = crew.day(crew.sim.vehicles[vi], day).stretches[0].start_s * 1000

        def assigned_at_first_stretch() -> bool:
            a = read_month(store, manifest, fleet, month, tmp_path / "c", "assignments")
            a = a.filter(pc.equal(pc.cast(a["vehicle_id"], "string"), vid))
            starts = pc.cast(a["start_ts"], "int64").to_pylist()
            ends = [e if e is not None else 1 << 62 for e in pc.cast(a["end_ts"], "int64").to_pylist()]
            return any(s <= lo < e for s, e in zip(starts, ends))

        assert not assigned_at_first_stretch(), "before the edit, the first stretch is unidentified driving"
        # what landed is what the TSP knew: every violation of the month, as the crew computes them
        v = read_month(store, manifest, fleet, month, tmp_path / "c", "hos_violations")
        want = sum(len(crew.violations(d.index, month, before // 1000)) for d in crew.drivers)
        assert v.num_rows == want
        drivers = read_snapshot(store, manifest, fleet, tmp_path / "c")
        assert drivers.column_names == ["fleet_id", "driver_id", "name", "source"], "no licence, no phone"
        assert drivers.num_rows == len(crew.drivers), "the fleet admin is no driver"

        set_clock(server, edit.visible_s + 3600)
        after = server.world.clock.now_ms()
        report = pull_fleet(connector, store, manifest, fleet, start, after, PullOptions(hos=hos))
        assert assigned_at_first_stretch(), "the refresh landed the claimed driving"
        changed = {c.month for c in report.commits if c.dataset == "assignments" and c.status.value == "committed"}
        assert month in changed
        for m in months:
            if month_bounds_ms(m)[1] <= before - hos.lookback_ms:
                assert manifest.raw_partition(fleet, "assignments", m).seq == seq[m], f"{m} was not pulled again"  # type: ignore[union-attr]


def test_a_late_edit_of_an_old_month_reruns_that_months_driver_features_and_nothing_else(tmp_path: Path) -> None:
    """Shown from the manifest's runs: after the refresh that lands the edit, the edited (complete)
    month gets a second drivers@1 run and no other flow runs again for any complete month."""
    from ingest.engine.executor import execute
    from ingest.engine.planner import plan
    from tests.support.flows import flow as builtin_flow

    fleet = "acme-freight"
    flows = [builtin_flow("distance@2"), builtin_flow("trips@3"), builtin_flow("drivers@1")]
    cfg = default_config(seed=11, vehicles=6, ping_interval_s=60, history_months=3, now=NOW)
    with SandboxServer(replace(cfg, samsara_rate_per_s=1000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        store = LocalStore(tmp_path / "lake")
        crew = server.world.crew(fleet)
        vi, day, edit = late_edit(crew)
        month = month_of_ms(crew.day(crew.sim.vehicles[vi], day).stretches[0].start_s * 1000)
        set_clock(server, edit.visible_s - 3600)
        connector = connect(server, "samsara", fleet, manifest, Vault(Fernet.generate_key().decode()))
        start = crew.sim.spec.history_start_s * 1000
        opts = PullOptions(hos=HosPull(lookback_ms=3 * DAY_S * 1000), with_events=True)
        now = server.world.clock.now_ms()
        pull_fleet(connector, store, manifest, fleet, start, now, opts)
        first = execute(manifest, plan(manifest, flows), flows, store.url, None, tmp_path / "c", now)
        assert first and all(r.status == "succeeded" for r in first), [r.error for r in first]

        set_clock(server, edit.visible_s + 3600)
        now = server.world.clock.now_ms()
        pull_fleet(connector, store, manifest, fleet, start, now, opts)
        second = execute(manifest, plan(manifest, flows), flows, store.url, None, tmp_path / "c", now)
        open_month = month_of_ms(now)
        reran = {(r.flow, r.month) for r in second if r.month != open_month}
        assert reran == {("drivers", month)}, reran
        runs = [r for r in manifest.runs() if r.month == month and r.status == "succeeded"]
        assert sorted(r.flow for r in runs) == ["distance", "drivers", "drivers", "trips"]


def land_hos(server: SandboxServer, tsp: str, fleet: str, month: str, where: Path
             ) -> tuple[dict[str, list[tuple]], list[dict]]:
    """The drivers snapshot and one month of HOS, pulled over HTTP and committed; with every response body."""
    with Manifest(where / "m.duckdb") as manifest:
        store = LocalStore(where / "lake")
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        bodies: list[dict] = []
        get = connector.http.get

        def recording_get(path: str, params: dict | None = None) -> httpx.Response:
            r = get(path, params)
            bodies.append({"path": path, **json.loads(r.content)})
            return r

        connector.http.get = recording_get  # type: ignore[method-assign]
        now = server.world.clock.now_ms()
        with MonthWriter(store, manifest, fleet, work_dir=where, now_ms=now) as w:
            HosPull().pull_drivers(connector, w)
            HosPull().pull_month(connector, w, month, now)
            w.commit()
        tables = {d: read_month(store, manifest, fleet, month, where / "c", d)
                  for d in ("assignments", "hos_logs", "hos_violations", "quarantine")}
        tables["drivers"] = read_snapshot(store, manifest, fleet, where / "c")
    return {d: sorted((tuple(r.values()) for r in t.to_pylist()), key=repr) for d, t in tables.items()}, bodies


@pytest.mark.parametrize("tsp,fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_every_quirk_on_lands_exactly_the_rows_of_none(tmp_path: Path, tsp: str, fleet: str) -> None:
    """Short and empty pages, optional fields left out, unknown fields, integers for floats, local
    offsets and whole seconds on the drivers' routes (Quirks.realistic): the same rows land, to the
    value, as from the plain TSP, and none is quarantined."""
    cfg = default_config(seed=11, vehicles=4, ping_interval_s=60, history_months=1, now=NOW)
    month = month_of_ms(int(cfg.fleets[0].spec.history_start.timestamp() * 1000))
    with SandboxServer(replace(cfg, samsara_rate_per_s=1000.0, motive_rate_per_s=1000.0)) as server:
        plain, plain_bodies = land_hos(server, tsp, fleet, month, tmp_path / "plain")
        server.world.set_quirks(fleet, Quirks.realistic(seed=5))
        quirky, bodies = land_hos(server, tsp, fleet, month, tmp_path / "quirks")

    assert all(plain[d] for d in ("assignments", "hos_logs", "hos_violations", "drivers")), "each dataset landed"
    for dataset, rows in plain.items():
        assert quirky[dataset] == rows, dataset
    assert not quirky["quarantine"], "a quirk is the API working as documented: nothing is quarantined"
    # ... and the quirks were served: pages cut short, optional fields left out, unknown fields added
    text = json.dumps(bodies)
    assert re.search(r'T\d\d:\d\d:\d\d(\.\d+)?-0[4-8]:00"', text), "times in the home terminal's zone"
    assert re.search(r'T\d\d:\d\d:\d\d(Z|[-+]\d\d:\d\d)"', text), "whole seconds without a fraction"
    if tsp == "samsara":
        assert len(bodies) > len(plain_bodies), "pages of their own sizes"
        assert any(not b["data"] and i and bodies[i - 1]["pagination"]["hasNextPage"]
                   and bodies[i - 1]["path"] == b["path"] for i, b in enumerate(bodies)), "an empty last page"
        entries = [e for b in bodies if b["path"] == "/fleet/hos/logs" for g in b["data"] for e in g["hosLogs"]]
        on_duty = [e for e in entries if e["hosStatusType"] == "onDuty"]
        assert any("remark" in e for e in on_duty) and any("remark" not in e for e in on_duty)
        assert '"logMetaData"' in text and '"eldDayStartHour"' in text and '"codrivers"' in text
    else:
        periods = [p["driving_period"] for b in bodies if b["path"] == "/v1/driving_periods"
                   for p in b["driving_periods"]]
        assert any("status" in p for p in periods) and any("status" not in p for p in periods)
        assert '"source"' in text and '"metric_units"' in text and '"eld_mode"' in text
