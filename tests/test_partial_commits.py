"""Partial commits append: a month landing in sixteen commits gains parts, not rewrites, and reads as one.

Each test compares with the same rows committed once (the writer's whole merge), so what they
prove is that appending changes how a month lands, never what any reader of it sees.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from common.states import CommitStatus
from partitions import Manifest, MonthWriter, layout, read_month
from partitions.delta import lake_for
from partitions.gc import collect_garbage
from partitions.store import ObjectStore
from tests.support.pings import shuffled_batches, sim_table, simulator

NOW_MS = 1_800_000_000_000
MONTH = "2025-03"


def _land(store: ObjectStore, m: Manifest, batches: list[pa.Table], tmp: Path,
          complete: tuple[str, ...] = ()) -> list[CommitStatus]:
    """One partial commit per batch, as a pull's commit_every makes them."""
    out = []
    with MonthWriter(store, m, "fleet-a", work_dir=tmp / "work", now_ms=NOW_MS) as w:
        for b in batches:
            w.add(b)
            out.extend(r.status for r in w.commit(complete=complete) if r.dataset == "pings")
    return out


def _by_vehicle_week(table: pa.Table, n: int) -> list[pa.Table]:
    """Disjoint slices of (vehicle, time), as a pull's vehicle-week slices are (sim_table is in that order)."""
    t = table
    step = -(-t.num_rows // n)
    return [t.slice(i, step) for i in range(0, t.num_rows, step)]


def _once(rows: pa.Table, tmp: Path, store: ObjectStore) -> tuple[str, pa.Table]:
    with Manifest(tmp / "once.duckdb") as m, MonthWriter(store, m, "fleet-a", work_dir=tmp / "w1", now_ms=NOW_MS) as w:
        w.add(rows)
        w.commit()
        part = m.raw_partition("fleet-a", "pings", MONTH)
        assert part is not None
        return part.fingerprint, read_month(store, m, "fleet-a", MONTH, tmp / "c1")


def _sorted(t: pa.Table) -> pa.Table:
    t = t.set_column(t.schema.get_field_index("vehicle_id"), "vehicle_id", pc.cast(t["vehicle_id"], pa.string()))
    return t.select(["vehicle_id", "ts", "lat", "lon", "speed_mph", "heading_deg", "odometer_mi"]).sort_by(
        [("vehicle_id", "ascending"), ("ts", "ascending")])


def _delta_keys(store: ObjectStore) -> tuple[int, int]:
    """(rows, distinct (vehicle, ts)) of the month as a Delta reader (delta-rs, pyarrow) sees it."""
    lake = lake_for(store)
    t = DeltaTable(lake.uri(layout.raw_table("pings")), storage_options=lake.storage_options).to_pyarrow_table(
        filters=[("month", "=", MONTH)], columns=["vehicle_id", "ts"])
    keys = pc.binary_join_element_wise(pc.cast(t["vehicle_id"], pa.string()),
                                       pc.cast(pc.cast(t["ts"], pa.int64()), pa.string()), "|")
    return t.num_rows, len(pc.unique(keys))


def test_sixteen_partial_commits_append_parts_that_read_as_the_month_committed_once(tmp_path: Path) -> None:
    from partitions.store import LocalStore

    rows = sim_table(simulator(vehicles=4), [MONTH])
    once_fp, once = _once(rows, tmp_path, LocalStore(tmp_path / "once-store"))
    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        assert _land(store, m, _by_vehicle_week(rows, 16), tmp_path) == [CommitStatus.COMMITTED] * 16
        part = m.raw_partition("fleet-a", "pings", MONTH)
        assert part is not None and len(part.files) == 16 and part.seq == 16
        # the fingerprint is the rows', however they landed: compaction later reruns no feature
        assert part.fingerprint == once_fp and part.rows == rows.num_rows
        assert _sorted(read_month(store, m, "fleet-a", MONTH, tmp_path / "c")).equals(_sorted(once))
        live = lake_for(store).live_files(layout.raw_table("pings"))[("fleet-a", MONTH)]
        assert sorted(f.key for f in live) == list(part.files)
        assert _delta_keys(store) == (rows.num_rows, rows.num_rows)


def test_a_re_pulled_lookback_adds_no_part_and_a_correction_merges_the_month(store: ObjectStore,
                                                                             tmp_path: Path) -> None:
    rows = sim_table(simulator(vehicles=3), [MONTH])
    slices = _by_vehicle_week(rows, 4)
    with Manifest(tmp_path / "m.duckdb") as m:
        _land(store, m, slices, tmp_path)
        before = m.raw_partition("fleet-a", "pings", MONTH)
        # The last slice again plus a shuffled half of the first: every row is already committed.
        again = pa.concat_tables([slices[-1], *shuffled_batches(slices[0], 2)[:1]])
        assert _land(store, m, [again], tmp_path) == [CommitStatus.UNCHANGED]
        assert m.raw_partition("fleet-a", "pings", MONTH) == before
        # The TSP corrects one committed point (same vehicle and time, another position): the
        # month is merged whole so the winner is the one a single commit of all rows would pick.
        fixed = slices[1].slice(0, 1).set_column(3, "lat", pa.array([-89.0]))
        assert _land(store, m, [fixed], tmp_path) == [CommitStatus.COMMITTED]
        after = m.raw_partition("fleet-a", "pings", MONTH)
        assert after is not None and len(after.files) == 1 and after.rows == rows.num_rows
        got = read_month(store, m, "fleet-a", MONTH, tmp_path / "c")
    with Manifest(tmp_path / "once.duckdb") as m1, MonthWriter(store, m1, "fleet-b", work_dir=tmp_path / "w",
                                                               now_ms=NOW_MS) as w:
        w.add(pa.concat_tables([rows, fixed]).set_column(0, "fleet_id", pa.array(
            ["fleet-b"] * (rows.num_rows + 1)).dictionary_encode()))
        w.commit()
        whole = read_month(store, m1, "fleet-b", MONTH, tmp_path / "c2")
    assert _sorted(got).equals(_sorted(whole))
    assert -89.0 in got["lat"].to_pylist()  # the smaller latitude wins by the rule, whatever arrived first


def test_completing_a_month_or_gc_compacts_its_parts_into_one_file_with_the_same_fingerprint(
        store: ObjectStore, tmp_path: Path) -> None:
    rows = sim_table(simulator(vehicles=3), ["2025-02", MONTH])
    feb = rows.filter(pc.less(pc.cast(rows["ts"], pa.int64()), 1_740_787_200_000))
    mar = rows.filter(pc.greater_equal(pc.cast(rows["ts"], pa.int64()), 1_740_787_200_000))
    with Manifest(tmp_path / "m.duckdb") as m:
        _land(store, m, _by_vehicle_week(mar, 3), tmp_path)
        _land(store, m, _by_vehicle_week(feb, 3), tmp_path, complete=("2025-02",))
        feb_part, mar_part = (m.raw_partition("fleet-a", "pings", mo) for mo in ("2025-02", MONTH))
        assert feb_part is not None and mar_part is not None
        assert len(feb_part.files) == 1  # its last commit completed it: one merge, one file
        assert len(mar_part.files) == 3
        report = collect_garbage(store, retention_hours=0, manifest=m, work_dir=tmp_path / "gcw")
        assert report.compacted == (("pings", "fleet-a", MONTH),)
        compacted = m.raw_partition("fleet-a", "pings", MONTH)
        assert compacted is not None and len(compacted.files) == 1
        assert compacted.fingerprint == mar_part.fingerprint and compacted.rows == mar_part.rows
        # the parts it replaced are superseded files, vacuumed like any other (retention 0 here)
        assert {f.key for f in report.removed} >= set(mar_part.files) - set(compacted.files)
        assert _delta_keys(store) == (mar.num_rows, mar.num_rows)
        assert collect_garbage(store, retention_hours=0, manifest=m).compacted == ()



def test_months_landed_in_memory_equal_months_landed_in_duckdb(tmp_path: Path) -> None:
    """Commits that fit the writer's memory limit land in Arrow (partitions.landing), bigger ones in
    DuckDB, which spills: on the same spool (duplicates with another winner, rows already
    committed, a quarantined row) both give the same rows, in the same file order, with the same
    digests: the new part, the compacted month, the whole merges of pings and quarantine."""
    import pyarrow.parquet as pq

    from partitions import landing, writer
    from partitions.digest import digest_table

    rows = sim_table(simulator(vehicles=3), [MONTH])
    slices = _by_vehicle_week(rows, 4)
    other = slices[1].slice(0, 40).set_column(3, "lat", pc.add(slices[1].slice(0, 40)["lat"], 0.001))
    bad = rows.slice(0, 1).set_column(3, "lat", pa.array([95.0]))  # coordinates out of range: quarantined
    d = tmp_path / "spool"
    d.mkdir()

    def spool(t: pa.Table, name: str) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for dataset, _month, path in writer.spool_batch("fleet-a", "pings", t, NOW_MS, d, name).files:
            out.setdefault(dataset, []).append(Path(path))
        return out

    first = spool(slices[0], "a")["pings"]
    committed = d / "committed.parquet"
    writer._append([], first, committed, tmp_path, "1GB")
    second = spool(pa.concat_tables([slices[1], other, slices[0].slice(0, 30), bad]), "b")
    results = {}
    for how, append, sort_parts in (("memory", writer._append, writer._sort_parts),
                                    ("duckdb", writer._append_in_duckdb, writer._sort_parts_in_duckdb)):
        part, month = tmp_path / f"{how}-part.parquet", tmp_path / f"{how}-month.parquet"
        digest = append([committed], second["pings"], part, tmp_path, "1GB")
        sort_parts([committed, part], month, tmp_path, "1GB")
        results[how] = (digest, pq.read_table(part), pq.read_table(month))
    (mem_digest, mem_part, mem_month), (db_digest, db_part, db_month) = results.values()
    assert mem_digest == db_digest and mem_digest is not None and mem_digest.rows == slices[1].num_rows
    for a, b in ((mem_part, db_part), (mem_month, db_month)):
        assert pc.cast(a["vehicle_id"], pa.string()).equals(pc.cast(b["vehicle_id"], pa.string()))
        assert a.drop_columns(["vehicle_id", "fleet_id", "source"]).equals(b.drop_columns(["vehicle_id", "fleet_id",
                                                                                            "source"]))
    assert mem_part["lat"].to_pylist() == slices[1]["lat"].to_pylist()  # the smaller latitude won, in key order
    for dataset in ("pings", "quarantine"):
        spooled = [*first, *second[dataset]] if dataset == "pings" else second[dataset]
        duck = writer._merge([], spooled, tmp_path / f"merge-{dataset}.parquet", dataset, tmp_path, "1GB")
        assert digest_table(landing.merged(dataset, [], spooled)) == duck


def test_parts_a_pull_worker_prepared_are_published_as_it_wrote_them_and_read_as_the_month_committed_once(
        tmp_path: Path) -> None:
    """Pull workers spool pings as parts (deduplicated, sorted, written, digested: prepared=True).
    Parts that share no key are published as written, one file per slice; one that re-pulls
    committed rows is cut to its new rows; parts that overlap each other are merged as a spool."""
    from partitions import writer
    from partitions.store import LocalStore

    rows = sim_table(simulator(vehicles=3), [MONTH])
    once_fp, once = _once(rows, tmp_path, LocalStore(tmp_path / "once-store"))
    store = LocalStore(tmp_path / "store")
    slices = _by_vehicle_week(rows, 4)
    with Manifest(tmp_path / "m.duckdb") as m, MonthWriter(store, m, "fleet-a", work_dir=tmp_path / "work",
                                                           now_ms=NOW_MS) as w:
        def prepared(t: pa.Table, name: str) -> writer.Spooled:
            return writer.spool_batch("fleet-a", "pings", t, NOW_MS, w.spool_dir, name, prepared=True)

        first = [prepared(s, f"s{i}") for i, s in enumerate(slices[:2])]
        for s in first:
            w.adopt(s)
        assert [r.status for r in w.commit(complete=())] == [CommitStatus.COMMITTED]
        part = m.raw_partition("fleet-a", "pings", MONTH)
        assert part is not None and sorted(part.files) == sorted(
            layout.raw_file("pings", "fleet-a", MONTH, p.digest.name) for s in first for p in s.parts)
        # the second slice re-pulled with the third (its rows already committed), then the last
        w.adopt(prepared(pa.concat_tables([slices[1], slices[2]]), "again"))
        w.adopt(prepared(slices[3], "last"))
        w.commit(complete=())
        part = m.raw_partition("fleet-a", "pings", MONTH)
        assert part is not None and len(part.files) == 4
        assert part.fingerprint == once_fp and part.rows == rows.num_rows
        # two parts sharing keys (one slice twice, shuffled): merged as a spool, nothing new
        w.adopt(prepared(slices[0], "twice-a"))
        w.adopt(prepared(shuffled_batches(slices[0], 1)[0], "twice-b"))
        assert [r.status for r in w.commit(complete=())] == [CommitStatus.UNCHANGED]
        assert _sorted(read_month(store, m, "fleet-a", MONTH, tmp_path / "c")).equals(_sorted(once))
    assert _delta_keys(store) == (rows.num_rows, rows.num_rows)


def test_a_month_of_one_prepared_part_is_written_again_compressed_when_compacted(tmp_path: Path) -> None:
    """Workers write their parts uncompressed (a pull compacts each month it pulled when the month's
    group is done): a part is valid Parquet holding its rows, published as it is by a partial commit,
    and a month that is one such part alone is written again, compressed, by the commit that compacts it."""
    import pyarrow.parquet as pq

    from partitions import writer
    from partitions.store import LocalStore

    def compression(path: str | Path) -> str:
        return pq.read_metadata(path).row_group(0).column(0).compression

    rows = sim_table(simulator(vehicles=1), [MONTH])
    once_fp, once = _once(rows, tmp_path, LocalStore(tmp_path / "once-store"))
    for complete, expected in (((), "UNCOMPRESSED"), ((MONTH,), "ZSTD")):
        lake = tmp_path / expected
        store = LocalStore(lake / "store")
        with Manifest(lake / "m.duckdb") as m, MonthWriter(store, m, "fleet-a", work_dir=lake / "work",
                                                           now_ms=NOW_MS) as w:
            spooled = writer.spool_batch("fleet-a", "pings", rows, NOW_MS, w.spool_dir, "s", prepared=True)
            [prep] = spooled.parts
            assert compression(prep.path) == "UNCOMPRESSED"
            assert _sorted(pq.read_table(prep.path)).equals(_sorted(once))
            w.adopt(spooled)
            assert [r.status for r in w.commit(complete=complete)] == [CommitStatus.COMMITTED]
            part = m.raw_partition("fleet-a", "pings", MONTH)
            assert part is not None and len(part.files) == 1 and part.fingerprint == once_fp
            assert compression(store.path(part.files[0])) == expected
            assert _sorted(read_month(store, m, "fleet-a", MONTH, lake / "c")).equals(_sorted(once))
