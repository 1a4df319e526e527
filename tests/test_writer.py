"""Month partition writer: splitting, merging, dedup, idempotence, fingerprints, quarantine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from partitions import Manifest, MonthWriter, read_month
from partitions.schema import PING_SCHEMA, candidates
from partitions.store import LocalStore, ObjectStore
from tests.support.pings import shuffled_batches, sim_table, simulator


def write(store: ObjectStore, manifest: Manifest, batches: list[pa.Table], tmp: Path, fleet: str = "fleet-a"):
    with MonthWriter(store, manifest, fleet, work_dir=tmp, now_ms=1_800_000_000_000) as w:
        for b in batches:
            w.add(b)
        return w.commit(), w


def committed(store: ObjectStore, manifest: Manifest, month: str, tmp: Path) -> pa.Table:
    return read_month(store, manifest, "fleet-a", month, tmp / "cache")


@pytest.fixture
def manifest(tmp_path: Path):
    with Manifest(tmp_path / "manifest.duckdb") as m:
        yield m


def _keys(t: pa.Table) -> list[tuple[str, int]]:
    return list(zip(t["vehicle_id"].to_pylist(), pc.cast(t["ts"], pa.int64()).to_pylist()))


def test_batches_in_any_order_become_sorted_deduplicated_months(store: ObjectStore, manifest: Manifest,
                                                               tmp_path: Path) -> None:
    sim = simulator()
    table = sim_table(sim, ["2025-02", "2025-03"])
    batches = shuffled_batches(table, 7)
    results, w = write(store, manifest, batches + batches[:2], tmp_path)  # two batches sent twice
    assert [(r.month, r.status) for r in results] == [("2025-02", "committed"), ("2025-03", "committed")]
    assert w.accepted == table.num_rows + batches[0].num_rows + batches[1].num_rows
    total = 0
    for month in ("2025-02", "2025-03"):
        got = committed(store, manifest, month, tmp_path)
        keys = _keys(got)
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert got.schema.equals(PING_SCHEMA, check_metadata=False)
        m = pc.equal(pc.strftime(table["ts"], format="%Y-%m"), month)
        assert sorted(keys) == sorted(_keys(table.filter(m)))
        total += got.num_rows
    assert total == table.num_rows


def test_identical_reingest_changes_nothing(store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    table = sim_table(simulator(), ["2025-02"])
    write(store, manifest, shuffled_batches(table, 3, seed=1), tmp_path)
    before = manifest.raw_partitions()
    objects = store.list("")
    results, _ = write(store, manifest, shuffled_batches(table, 5, seed=2), tmp_path)
    assert [r.status for r in results] == ["unchanged"]
    assert manifest.raw_partitions() == before
    assert store.list("") == objects


def test_late_pings_change_only_their_month(store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    sim = simulator()
    table = sim_table(sim, ["2025-02", "2025-03"])
    feb = pc.equal(pc.strftime(table["ts"], format="%Y-%m"), "2025-02")
    feb_rows = table.filter(feb)
    held_back = feb_rows.slice(0, 50)
    write(store, manifest, [feb_rows.slice(50), table.filter(pc.invert(feb))], tmp_path)
    before = {p.month: p for p in manifest.raw_partitions()}
    results, _ = write(store, manifest, [held_back], tmp_path)
    assert [(r.month, r.status) for r in results] == [("2025-02", "committed")]
    after = {p.month: p for p in manifest.raw_partitions()}
    assert after["2025-03"] == before["2025-03"]
    assert after["2025-02"].fingerprint != before["2025-02"].fingerprint
    assert after["2025-02"].seq == 2 and after["2025-02"].rows == before["2025-02"].rows + 50


def test_duplicate_winner_does_not_depend_on_arrival_order(tmp_path: Path) -> None:
    base = sim_table(simulator(vehicles=1), ["2025-02"]).slice(0, 100)
    variant = base.set_column(base.schema.get_field_index("lat"), "lat",
                              pc.add(base["lat"], pa.scalar(0.001)))
    fps = []
    for i, order in enumerate(([base, variant], [variant, base])):
        d = tmp_path / str(i)
        with Manifest(d / "m.duckdb") as m:
            write(LocalStore(d / "store"), m, order, d)
            p = m.raw_partition("fleet-a", "pings", "2025-02")
            fps.append(p.fingerprint)
            got = read_month(LocalStore(d / "store"), m, "fleet-a", "2025-02", d / "c")
            assert got.num_rows == 100
            assert got["lat"].to_pylist() == base["lat"].to_pylist()  # the smaller latitude wins
    assert fps[0] == fps[1]


def test_month_boundaries_are_utc(store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    ts = np.array(["2025-01-31T23:59:59.999", "2025-02-01T00:00:00.000"], dtype="datetime64[ms]")
    t = candidates({"fleet_id": ["fleet-a"] * 2, "vehicle_id": ["v1"] * 2, "ts": ts, "lat": [40.0, 40.0],
                    "lon": [-90.0, -90.0], "speed_mph": [0.0, 0.0], "source": ["motive"] * 2})
    results, _ = write(store, manifest, [t], tmp_path)
    assert [(r.month, r.rows) for r in results] == [("2025-01", 1), ("2025-02", 1)]


def test_bad_rows_are_quarantined_with_reasons_and_counted(store: ObjectStore, manifest: Manifest,
                                                          tmp_path: Path) -> None:
    good = sim_table(simulator(vehicles=1), ["2025-02"]).slice(0, 20)
    ts = np.array(["2025-02-03T10:00:00"] * 9 + ["1994-02-03T10:00:00"], dtype="datetime64[ms]")
    bad = candidates({
        "fleet_id": ["fleet-a"] * 10, "vehicle_id": ["v1", "v1", "v1", "v1", "v1", "", "v1", "v1", "v1", "v1"],
        "ts": ts,
        "lat": [None, float("nan"), 0.0, 95.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0],
        "lon": [-90.0, -90.0, 0.0, -90.0, -90.0, -90.0, -90.0, -90.0, -90.0, -90.0],
        "speed_mph": [10.0, 10.0, 0.0, 10.0, -3.0, 10.0, None, 10.0, 10.0, 10.0],
        "heading_deg": [None, None, None, None, None, None, None, 400.0, None, None],
        "source": ["samsara"] * 8 + ["garmin", "samsara"],
        "raw": [None] * 6 + ['{"speedMilesPerHour":"fast"}', None, None, None]})
    results, w = write(store, manifest, [good, bad], tmp_path)
    # A bad optional value (speed -3, heading 400, an unparseable speed) costs that value, not the ping.
    assert w.accepted == 23 and sum(w.quarantined.values()) == 7
    assert w.quarantined == {"missing coordinates": 1, "NaN coordinates": 1, "null island (0, 0)": 1,
                             "coordinates out of range": 1, "missing vehicle_id": 1, "unknown source": 1,
                             "timestamp out of range": 1}
    assert w.nulled == {"speed out of range": 1, "heading out of range": 1, "unparseable optional value": 1}
    q = {r.month: r for r in results if r.dataset == "quarantine"}
    assert sum(r.rows for r in q.values()) == 7
    assert "2025-02" in q  # plausible timestamps file under their own month
    qt = read_month(store, manifest, "fleet-a", "2025-02", tmp_path / "c", dataset="quarantine")
    assert "missing coordinates" in qt["reason"].to_pylist()
    pings = [r for r in results if r.dataset == "pings"]
    # the three rows with nulled fields share (vehicle, ts): one ping, with the nulls in place
    assert [(r.month, r.rows) for r in pings] == [("2025-02", 21)]


def test_files_are_zstd_sorted_dictionary_encoded_and_hive_readable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02", "2025-03"])], tmp_path)
        files = [f for p in m.raw_partitions() for f in p.files]
    meta = pq.ParquetFile(store.path(files[0])).metadata
    cols = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert cols["lat"].compression == "ZSTD"
    assert any("DICTIONARY" in e for e in cols["vehicle_id"].encodings)
    rows = duckdb.sql(f"SELECT fleet, month, count(*) FROM read_parquet('{store.root}/raw/pings/*/*/*.parquet', "
                      "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("fleet-a", "2025-02"), ("fleet-a", "2025-03")]


def test_rows_of_another_fleet_are_refused(store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    t = sim_table(simulator(vehicles=1), ["2025-02"], fleet_id="fleet-b").slice(0, 5)
    with pytest.raises(ValueError, match="fleet-b"):
        write(store, manifest, [t], tmp_path)
    assert manifest.raw_partitions() == []


def test_nothing_is_visible_before_commit(store: ObjectStore, manifest: Manifest, tmp_path: Path) -> None:
    t = sim_table(simulator(vehicles=1), ["2025-02"])
    with MonthWriter(store, manifest, "fleet-a", work_dir=tmp_path) as w:
        w.add(t)
        assert manifest.raw_partitions() == [] and store.list("raw/") == []
    assert store.list("raw/") == [] and not any(tmp_path.glob("fleetlake-writer-*"))
