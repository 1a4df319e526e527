"""Features walked vehicle by vehicle (issue 15, ingest/flows/walk.py), held to the retired versions' outputs.

tests/golden/ holds the last outputs of the versions that left the tree (issue 24), computed on
this module's months (`months`), as `<case>.<flow>@<version>.parquet`:

- data_quality@1 and distance@2 keep their bytes: the walk writes exactly what the whole-month
  code (retired) wrote, on months as messy as real ones;
- trips@3, speed@3, radius@2, fatigue@3 and harsh@3 are their predecessors' rules walked (trips@2,
  speed@2, radius@1, fatigue@2, harsh@2): every count, id, class and reason is equal, and floats
  differ by rounding only;
- memory is a few vehicle-months, not the month: Arrow memory live while the stream is walked
  stays under a few vehicles' worth on a month of forty;
- a month file whose vehicles are not contiguous fails its windows with an error that says so.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.flows import walk
from ingest.flows.base import Flow, FlowInput
from ingest.flows.registry import active_flows, builtin
from sandbox.groundtruth import month_table
from sandbox.simulator import FleetSimulator, FleetSpec

MONTH = "2025-03"
GOLDEN = Path(__file__).parent / "golden"
FLOWS = builtin()
SAME_BYTES = ["data_quality@1", "distance@2"]
# (active version, the retired version whose contract and rules it keeps)
SUCCESSORS = [("trips@3", "trips@2"), ("speed@3", "speed@2"), ("radius@2", "radius@1"), ("fatigue@3", "fatigue@2"),
              ("harsh@3", "harsh@2")]


def _flow(key: str) -> Flow:
    name, _, version = key.partition("@")
    return FLOWS[(name, int(version))]


def _golden(case: str, key: str) -> pa.Table:
    return pq.read_table(GOLDEN / f"{case}.{key}.parquet")


@pytest.fixture(scope="module")
def months() -> dict[str, dict[str, pa.Table]]:
    """A 5 s fleet with 1 s jitter, noise, dropouts and devices without heading; a 1 s fleet; the
    5 s fleet with TSP safety events, one of them for a vehicle that sent no pings."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    five = month_table(FleetSimulator(FleetSpec("fleet-a", 23, 4, start, ping_interval_s=5, jitter_s=1,
                                                 no_heading_share=0.25)), MONTH)
    one = month_table(FleetSimulator(FleetSpec("fleet-b", 5, 3, start, ping_interval_s=1, no_heading_share=0.5)),
                      MONTH)
    vids = sorted(set(five["vehicle_id"].to_pylist()))
    ts = pa.array([1_741_000_000_000 + i * 3_600_000 for i in range(5)], pa.timestamp("ms", tz="UTC"))
    events = pa.table({"vehicle_id": [vids[0], vids[0], vids[1], "ghost", vids[2]], "ts": ts,
                       "kind": ["harsh_brake", "harsh_turn", "harsh_accel", "harsh_brake", "crash"],
                       "source": ["samsara"] * 5, "event_id": [f"e{i}" for i in range(5)]})
    return {"five": {"pings": five}, "one": {"pings": one}, "events": {"pings": five, "events": events}}


def _bytes(table: pa.Table, flow: Flow) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table.select(flow.schema.names).cast(flow.schema), buf, compression="zstd")
    return buf.getvalue()


def _inp(tables: dict[str, pa.Table], flow: Flow) -> FlowInput:
    return FlowInput("fleet-a", MONTH, {d: t for d, t in tables.items() if d in flow.inputs}, True)


@pytest.mark.parametrize("case", ["five", "one"])
@pytest.mark.parametrize("key", SAME_BYTES)
def test_walking_keeps_the_bytes_of_the_retired_whole_month_code(months, case, key) -> None:  # type: ignore[no-untyped-def]
    flow = _flow(key)
    walked = walk.compute(flow, _inp(months[case], flow))
    assert walked.num_rows > len(set(months[case]["pings"]["vehicle_id"].to_pylist()))  # vehicles and the fleet
    assert _bytes(walked, flow) == _bytes(_golden(case, key), flow)


@pytest.mark.parametrize("new,old,case", [(n, o, c) for n, o in SUCCESSORS
                                           for c in ("five", "one", *(("events",) if n.startswith("harsh") else ()))])
def test_a_walked_version_has_its_retired_predecessor_s_numbers(months, new, old, case) -> None:  # type: ignore[no-untyped-def]
    flow = _flow(new)
    a = walk.compute(flow, _inp(months[case], flow)).to_pylist()
    b = _golden(case, old).to_pylist()
    assert [r["vehicle_id"] for r in a] == [r["vehicle_id"] for r in b] and a[-1]["vehicle_id"] is None
    for x, y in zip(a, b):
        for col, want in y.items():
            got = x[col]
            if isinstance(want, float) and got is not None:
                tol = 0.005 if col == "p95_mph" else 1e-9 * max(1.0, abs(want))  # speed@3's p95: a 0.01 mph grid
                assert abs(got - want) <= tol, (new, col, x["vehicle_id"], got, want)
            else:
                assert got == want, (new, col, x["vehicle_id"], got, want)


def test_the_active_flows_all_walk() -> None:
    assert all(f.walk is not None for f in active_flows())


def test_exact_order_statistics_from_counts_match_numpy() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 101, 1000):
        keys = rng.integers(4_000, 6_000, n)
        counts = walk.Counts(1000.0)
        for chunk in np.array_split(keys, 3):
            part = walk.Counts(1000.0)
            part.add(chunk)
            counts.merge([part])
        values = keys / 1000.0
        assert counts.median() == float(np.median(values))
        for q in (0.0, 0.5, 0.9, 0.95, 1.0):
            assert counts.quantile(q) == float(np.quantile(values, q))


def _synthetic_month(path: Path, vehicles: int, pings: int) -> int:
    """A month file as the writer lays it out (sorted by vehicle, row groups across vehicles); its bytes per vehicle."""
    rng = np.random.default_rng(0)
    n = vehicles * pings
    ts = np.tile(1_740_787_200_000 + np.arange(pings, dtype=np.int64) * 5_000, vehicles)
    speed = np.clip(rng.normal(40, 25, n), 0, 80)
    t = pa.table({"vehicle_id": pa.array(np.repeat([f"v{i:03d}" for i in range(vehicles)], pings)).dictionary_encode(),
                  "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
                  "lat": 35.0 + np.cumsum(rng.normal(0, 1e-4, n)), "lon": -97.0 + np.cumsum(rng.normal(0, 1e-4, n)),
                  "speed_mph": speed, "heading_deg": rng.uniform(0, 360, n),
                  "odometer_mi": 100_000 + np.cumsum(speed * 5 / 3600)})
    pq.write_table(t, path, row_group_size=2 * pings, compression="zstd")
    return t.slice(0, pings).nbytes


def test_the_walk_holds_a_few_vehicle_months_not_the_month(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches smaller than a vehicle, as a real month's are (65 k rows against 0.1-1.3 M pings a
    # vehicle-month), so what is held shows in vehicles, not in batches.
    monkeypatch.setattr(walk, "BATCH_ROWS", 4_096)
    path = tmp_path / "month.parquet"
    vehicles = 40
    one_vehicle = _synthetic_month(path, vehicles, 20_000)
    base = pa.total_allocated_bytes()
    live: list[int] = []
    seen: list[str] = []

    def vehicles_of(columns: tuple[str, ...] | None) -> Iterator[pa.Table]:
        for t in walk.stream_by_vehicle([str(path)], columns):
            live.append(pa.total_allocated_bytes() - base)
            if columns is None or "lat" in columns:
                seen.append(str(t["vehicle_id"][0].as_py()))
            yield t

    out = walk.run([f for f in active_flows() if not f.upstream], "fleet-a", MONTH, True, vehicles_of, {})
    assert all(isinstance(t, pa.Table) for t in out.values()), out
    assert seen == [f"v{i:03d}" for i in range(vehicles)]  # every vehicle once, in order
    assert out[("data_quality", 1)].num_rows == vehicles + 1
    # The whole month is 40 vehicle-months. The walk holds the vehicles in flight (THREADS + 1),
    # each with its columns converted for numpy, the one being read and a row group (two
    # vehicles) being decoded: about ten, however long the month is.
    assert max(live) < 12 * one_vehicle, (max(live), one_vehicle)
    walked = live[vehicles:]  # the second pass, all columns
    assert max(walked[-10:]) <= max(walked[:10]) + one_vehicle, walked  # nothing piles up


def test_a_month_whose_vehicles_are_not_contiguous_fails_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    t = pa.table({"vehicle_id": ["a", "a", "b", "a"], "ts": pa.array([1, 2, 3, 4], pa.timestamp("ms", tz="UTC")),
                  "lat": [35.0] * 4, "lon": [-97.0] * 4, "speed_mph": [10.0] * 4, "heading_deg": [0.0] * 4})
    pq.write_table(t, path)
    with pytest.raises(ValueError, match="vehicle 'a' are not contiguous: the month file is not sorted by vehicle"):
        walk.run([_flow("distance@2")], "f", MONTH, True, lambda c: walk.stream_by_vehicle([str(path)], c), {})


def test_a_month_left_in_parts_is_walked_like_its_compacted_file(tmp_path: Path) -> None:
    """A pull stopped between a partial commit and the month's compaction leaves the month in
    disjoint parts (issue 27); the walk reads them whole: the same vehicles, rows and order as
    the one compacted file (Arrow cannot sort the files' dictionary-encoded vehicle ids as such)."""
    from partitions.schema import PING_SCHEMA
    from tests.support.pings import sim_table, simulator

    plain = sim_table(simulator(vehicles=3, interval=60, seed=9), ["2025-03"]).select(PING_SCHEMA.names)
    plain = plain.set_column(1, "vehicle_id", plain["vehicle_id"].cast(pa.string()))
    month = plain.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")]).cast(PING_SCHEMA)
    pq.write_table(month, tmp_path / "whole.parquet")
    rows = np.arange(month.num_rows)
    for i, keep in enumerate((rows % 3 == 0, rows % 3 != 0)):  # two parts, each sorted, keys disjoint
        pq.write_table(month.filter(pa.array(keep)), tmp_path / f"part-{i}.parquet")

    def walked(paths: list[Path]) -> list[tuple[str, list[int]]]:
        return [(str(t["vehicle_id"][0]), t["ts"].cast(pa.int64()).to_pylist())
                for t in walk.stream_by_vehicle([str(p) for p in paths], ("vehicle_id", "ts"))]

    whole = walked([tmp_path / "whole.parquet"])
    assert len(whole) == 3 and sum(len(ts) for _, ts in whole) == month.num_rows
    assert walked([tmp_path / "part-0.parquet", tmp_path / "part-1.parquet"]) == whole
