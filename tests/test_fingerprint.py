"""Code fingerprints follow what a flow computes, not how its source is laid out."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest

from common.states import RunStatus
from ingest.engine import fingerprint
from ingest.engine.fingerprint import LEGACY, code_fingerprint
from ingest.engine.planner import plan
from ingest.flows.base import Flow, table_walk
from ingest.flows.registry import available
from partitions import Manifest
from partitions.manifest import FlowRun, RawPartition

FLOW_SRC = '''
"""A toy flow."""
import pyarrow as pa
from {helper_pkg}.scale import factor
from fpproj.flows.base_like import SCHEMA


def compute(inp):
    return pa.table({{"v": [factor() * 2]}})
'''

REFORMATTED_FLOW_SRC = '''
"""A toy flow, now documented at length.

Reformatted, with comments and type hints, and its helper moved to another package.
"""
from typing import Any

import pyarrow as pa

from fpproj.flows.base_like import SCHEMA  # the output schema
from {helper_pkg}.scale import factor


def compute(inp: Any) -> pa.Table:
    """Twice the factor."""
    # why: the toy needs some arithmetic
    return pa.table(
        {{"v": [factor() * 2]}}
    )
'''

HELPER_SRC = '''
def factor() -> int:
    """The scale factor."""
    return {value}
'''


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if str(parent) != ".":
            (root / parent / "__init__.py").touch()
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A small source tree on sys.path, not installed: its own package is found from its location."""
    _write(tmp_path, "fpproj/flows/base_like.py", "import pyarrow as pa\nSCHEMA = pa.schema([('v', pa.int64())])\n")
    _write(tmp_path, "fpproj/helpers/scale.py", HELPER_SRC.format(value=3))
    _write(tmp_path, "fpproj/flows/toy.py", FLOW_SRC.format(helper_pkg="fpproj.helpers"))
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.split(".")[0] == "fpproj"]:
        del sys.modules[name]
    fingerprint.forget()


def _toy_fp() -> str:
    fingerprint.forget()  # the source changed under the same process
    importlib.invalidate_caches()
    return code_fingerprint("fpproj.flows.toy")


def test_moving_a_helper_and_reformatting_the_flow_keeps_the_fingerprint(project: Path) -> None:
    before = _toy_fp()
    assert set(fingerprint.closure_digests("fpproj.flows.toy")) >= {"fpproj.flows.toy", "fpproj.helpers.scale",
                                                                     "fpproj.flows.base_like"}
    (project / "fpproj/helpers/scale.py").unlink()
    _write(project, "fpproj/shared/math/scale.py", "\n\n" + HELPER_SRC.format(value=3).replace('"""The scale factor."""',
                                                                                                "# moved here"))
    _write(project, "fpproj/flows/toy.py", REFORMATTED_FLOW_SRC.format(helper_pkg="fpproj.shared.math"))
    assert _toy_fp() == before


def test_a_change_of_behaviour_changes_the_fingerprint(project: Path) -> None:
    before = _toy_fp()
    _write(project, "fpproj/helpers/scale.py", HELPER_SRC.format(value=4))  # the helper computes something else
    assert _toy_fp() != before


def _manifest_with_one_window(path: Path) -> Manifest:
    m = Manifest(path)
    from datetime import datetime, timezone

    m.commit_raw(RawPartition("fleet-a", "pings", "2025-02", 1, ("raw/pings/fleet=fleet-a/month=2025-02/p.parquet",),
                              10, 100, "fp-raw", datetime(2025, 3, 1, tzinfo=timezone.utc)))
    return m


def _record_success(m: Manifest, flow: Flow, code_fp: str) -> None:
    from datetime import datetime, timezone

    [task] = [t for t in plan(m, [flow])]
    now = datetime.now(timezone.utc)
    m.record_run(FlowRun("run-1", flow.name, flow.version, code_fp, task.fleet_id, task.month, task.input_fp,
                         RunStatus.SUCCEEDED, ("features/x.parquet",), {"rows": 1}, None, now, now))


def test_a_flow_moved_and_reformatted_is_not_planned_again(project: Path, tmp_path: Path) -> None:
    toy = importlib.import_module("fpproj.flows.toy")
    flow = Flow("toy", 1, ("pings",), pa.schema([("v", pa.int64())]), table_walk(toy.compute), module="fpproj.flows.toy")
    with _manifest_with_one_window(tmp_path / "m.duckdb") as m:
        _record_success(m, flow, _toy_fp())
        assert plan(m, [flow]) == []
        (project / "fpproj/helpers/scale.py").rename(project / "fpproj/flows/scale.py")
        _write(project, "fpproj/flows/toy.py", REFORMATTED_FLOW_SRC.format(helper_pkg="fpproj.flows"))
        _toy_fp()
        assert plan(m, [flow]) == []
        _write(project, "fpproj/flows/scale.py", HELPER_SRC.format(value=5))
        _toy_fp()
        assert [t.month for t in plan(m, [flow])] == ["2025-02"]


def test_runs_with_the_previous_schemes_fingerprint_are_rekeyed_not_recomputed(tmp_path: Path) -> None:
    distance = available()[("distance", 2)]
    legacy_fp, target = next(iter(LEGACY[("distance", 2)].items()))
    with _manifest_with_one_window(tmp_path / "m.duckdb") as m:
        _record_success(m, distance, legacy_fp)
        planned = plan(m, [distance])
        assert [r.code_fp for r in m.runs("distance")] == [target]
        if target == code_fingerprint(distance.module):  # the code is as it was: nothing to compute
            assert planned == []
        else:  # the code changed since: the window is recomputed, as for any change
            assert [t.month for t in planned] == ["2025-02"]


def test_every_active_version_of_the_move_to_packages_has_its_previous_fingerprints_mapped() -> None:
    """Moving the rules into flow packages (issue 24) recomputes nothing: the versions active then
    map every earlier fingerprint to one target (their code's when the move landed; a later change
    of their code gives a new fingerprint and recomputes, as it must). Retired versions have none."""
    from ingest.flows.registry import active_flows

    moved = {("data_quality", 1), ("distance", 2), ("trips", 3), ("speed", 3), ("radius", 2), ("fatigue", 3),
             ("harsh", 3)}
    assert set(LEGACY) == moved and moved <= set(available())
    assert all(m and all(len(fp) == 32 for kv in m.items() for fp in kv) for m in LEGACY.values())
    assert all(len(set(m.values())) == 1 for m in LEGACY.values())
    assert {(f.name, f.version) for f in active_flows(None)} <= set(available())


def test_no_flow_reaches_the_error_tree_so_a_new_error_reruns_no_window() -> None:
    """The flows validate names through common.names, which raises from common.base_errors only:
    a new error class in common.errors must leave every flow's code fingerprint as it is."""
    from ingest.flows.registry import active_flows

    for f in active_flows(None):
        reached = fingerprint.closure_digests(f.module)
        assert "common.errors" not in reached and "common.base_errors" in reached, (f.name, sorted(reached))
