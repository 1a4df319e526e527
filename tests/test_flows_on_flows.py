"""Flows on flows (issue 24): the graph is ordered, a cycle is refused at start, change propagates by content.

- an upstream flow whose code changes but whose output stays byte-identical reruns its windows,
  and nothing downstream reruns (from the manifest's runs);
- a change that alters the output of one month reruns exactly the dependants of that month;
- a cycle among the active flows is refused when the flows file is read, naming it, in one line.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

from common.errors import ConfigError
from ingest.engine import fingerprint
from ingest.engine.runs import run_features
from ingest.flows import registry
from ingest.flows.base import Flow, table_walk
from ingest.flows.graph import FlowGraphError, ordered
from partitions import Manifest
from partitions.store import LocalStore
from tests.support.inline import InlineBackend
from tests.support.pings import sim_table, simulator
from tests.test_writer import write

MONTHS = ["2025-02", "2025-03", "2025-04"]
NOW_MS = 1_900_000_000_000

UP = '''
import pyarrow as pa
from ingest.flows.base import Flow, Walk

SCHEMA = pa.schema([("fleet_id", pa.string()), ("month", pa.string()), ("vehicle_id", pa.string()),
                    ("pings", pa.int64())])


def vehicle(inp, ctx):
    n = inp.tables["pings"].num_rows{change}
    return [{{"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": inp.tables["pings"]["vehicle_id"][0].as_py(),
              "pings": n}}], n


def fleet(inp, ctx, parts):
    return [{{"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": None, "pings": sum(parts)}}]


VERSIONS = (Flow("toy_up", 1, ("pings",), SCHEMA, Walk(vehicle, fleet)),)
'''

DOWN = '''
import pyarrow as pa
from ingest.flows.base import Flow, table_walk

SCHEMA = pa.schema([("fleet_id", pa.string()), ("month", pa.string()), ("fleet_pings", pa.int64())])


def rows(inp):
    up = [r for r in inp.tables["toy_up@1"].to_pylist() if r["vehicle_id"] is None]
    return [{"fleet_id": inp.fleet_id, "month": inp.month, "fleet_pings": sum(r["pings"] for r in up)}]


VERSIONS = (Flow("toy_down", 1, ("toy_up@1",), SCHEMA, table_walk(rows)),)
'''

SAME_OUTPUT = "\n    unused = n * 0  # new code, same rows"
ONE_MONTH_CHANGES = "\n    n = n + 1 if inp.month == '2025-03' else n"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    (root / "toyflows" / "__init__.py").touch()
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "src"
    _write(root, "toyflows/up/__init__.py", UP.format(change=""))
    _write(root, "toyflows/down/__init__.py", DOWN)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [n for n in sys.modules if n.split(".")[0] == "toyflows"]:
        del sys.modules[name]
    fingerprint.forget()


def _flows() -> list[Flow]:
    fingerprint.forget()  # the source changed under the same process
    importlib.invalidate_caches()
    up = importlib.reload(importlib.import_module("toyflows.up"))
    down = importlib.import_module("toyflows.down")
    return ordered([*down.VERSIONS, *up.VERSIONS])


def _runs(m: Manifest, flow: str) -> list[str]:
    return sorted(r.month for r in m.runs(flow) if r.status == "succeeded")


def test_an_identical_upstream_output_reruns_nothing_downstream_and_a_changed_month_reruns_its_dependants(
        toy: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), MONTHS)], tmp_path)

        def run() -> None:
            rep = run_features(m, _flows(), store.url, None, tmp_path / "c", NOW_MS, backend=InlineBackend())
            assert not rep.failed, [r.error for r in rep.failed]

        run()
        assert _runs(m, "toy_up") == MONTHS and _runs(m, "toy_down") == MONTHS
        run()  # nothing changed: nothing runs
        assert _runs(m, "toy_up") == MONTHS and _runs(m, "toy_down") == MONTHS

        _write(toy, "toyflows/up/__init__.py", UP.format(change=SAME_OUTPUT))
        run()
        assert _runs(m, "toy_up") == sorted(MONTHS * 2)  # new code: every upstream window reran ...
        assert _runs(m, "toy_down") == MONTHS  # ... wrote the same bytes, and nothing downstream reran

        _write(toy, "toyflows/up/__init__.py", UP.format(change=ONE_MONTH_CHANGES))
        run()
        assert _runs(m, "toy_up") == sorted(MONTHS * 3)
        assert _runs(m, "toy_down") == sorted([*MONTHS, "2025-03"])  # exactly the month whose input changed
        [up] = [r for r in m.latest_runs() if r.flow == "toy_up" and r.month == "2025-03"]
        [down] = [r for r in m.latest_runs() if r.flow == "toy_down" and r.month == "2025-03"]
        fleet_up = [r for r in pq.read_table(store.path(up.outputs[0])).to_pylist() if r["vehicle_id"] is None]
        assert pq.read_table(store.path(down.outputs[0]))["fleet_pings"].to_pylist() == [fleet_up[0]["pings"]]


def _flow(name: str, inputs: tuple[str, ...]) -> Flow:
    import pyarrow as pa

    return Flow(name, 1, inputs, pa.schema([("fleet_id", pa.string())]), table_walk(lambda inp: []))


def test_the_graph_puts_a_flow_after_what_it_reads_and_refuses_a_cycle_naming_it() -> None:
    a, b, c = _flow("a", ("b@1",)), _flow("b", ("c@1",)), _flow("c", ("pings",))
    assert [f.key for f in ordered([a, b, c])] == ["c@1", "b@1", "a@1"]
    looped = _flow("c", ("a@1",))
    with pytest.raises(FlowGraphError, match=r"^flows form a cycle: a@1 -> b@1 -> c@1 -> a@1$"):
        ordered([a, b, looped])
    with pytest.raises(FlowGraphError, match="a@1 reads b@1, which is not active"):
        ordered([a])


def test_a_cycle_in_the_flows_file_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = {(f.name, f.version): f for f in (_flow("a", ("b@1",)), _flow("b", ("a@1",)))}
    monkeypatch.setattr(registry, "available", lambda: flows)
    f = tmp_path / "flows.toml"
    f.write_text('active = ["a@1", "b@1"]\n')
    with pytest.raises(ConfigError) as e:
        registry.active_flows(f)
    assert e.value.setting == "FLEETLAKE_FLOWS_FILE" and "flows form a cycle: a@1 -> b@1 -> a@1" in str(e.value)
    assert "\n" not in str(e.value)
