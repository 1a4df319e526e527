"""A plug-in flow that raises, returns rows that do not fit its schema, or hangs fails only its own
windows, with an error that says which; the built-in flows and the other fleets go on (issue 24)."""

from __future__ import annotations

from pathlib import Path

from ingest.engine.executor import execute
from ingest.engine.planner import plan
from partitions import Manifest
from partitions.store import LocalStore
from tests.support import bad_flows
from tests.support.flows import flow
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

NOW_MS = 1_900_000_000_000


def test_a_broken_plugin_fails_its_own_windows_and_nothing_else(tmp_path: Path) -> None:
    flows = [flow("distance@2"), *bad_flows.VERSIONS]
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        for i, fleet in enumerate(("fleet-a", "fleet-b")):
            write(store, m, [sim_table(simulator(vehicles=2, seed=5 + i), ["2025-03"], fleet_id=fleet)], tmp_path,
                  fleet=fleet)
        results = execute(m, plan(m, flows), flows, store.url, None, tmp_path / "c", NOW_MS, deadline_s=5.0)
        by = {(r.flow, r.fleet_id): r for r in results}
        assert len(by) == 8
        for fleet in ("fleet-a", "fleet-b"):
            assert by[("distance", fleet)].status == "succeeded" and by[("distance", fleet)].outputs
            assert by[("raises", fleet)].status == "failed"
            assert (by[("raises", fleet)].error or "").startswith("ZeroDivisionError: the plug-in's own bug")
            assert by[("wrong_rows", fleet)].status == "failed" and "many" in (by[("wrong_rows", fleet)].error or "")
            assert (by[("hangs", fleet)].error or "").startswith("WindowTimeout: no answer within 5 s "
                                                                 "(FLEETLAKE_WINDOW_DEADLINE_S)")
        # the failed windows are planned again; the built-in's are current
        assert {(t.flow, t.fleet_id) for t in plan(m, flows)} == {(f, fl) for f in ("raises", "wrong_rows", "hangs")
                                                                 for fl in ("fleet-a", "fleet-b")}
