"""A month's new pings landed in memory with Arrow and numpy, when they fit: dedupe, anti-join, sort.

The writer's DuckDB queries (partitions.writer: `_ORDER["pings"]`, `_append`, `_sort_parts`) do
the same work and spill to disk, but cost several µs per ping in a pull (a window function over
every spooled row, a temp table, a join, a sort, then a cast of every batch back to the schema).
Most commits are small next to the writer's memory limit, so they are done here instead, with the
same results:

- one row per (vehicle_id, ts): sorted on one integer key (the vehicle's rank among the ids by
  their text, then the time), and only when two rows share a key is the winner picked by the
  rule of `_ORDER["pings"]` (the smallest by lat, lon, speed, heading, odometer, source, nulls
  last), so the winner depends on the rows alone;
- the spool's keys the committed month already holds: dropped when the row is the same
  (`_SAME_PING`), and None (merge the month whole) when one differs;
- sorted by (vehicle_id, ts), the order every month file has.

The whole merge of a month (`merged`: committed files plus the spool, as `_ORDER[dataset]` selects
them) is done here too for every dataset: a refresh with nothing new merges each of a fleet's
small months (events, quarantine, drivers, HOS) only to find it unchanged, and DuckDB's fixed
cost per query was most of such a refresh. Rows are told apart by their content hashes
(partitions.digest.row_hashes), so DISTINCT and "one row per key" hold as in SQL, NaN included.

`fits` says which path a commit takes: the spooled bytes (uncompressed Arrow IPC, about what the
rows take in memory) times the copies made here must stay within the memory limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq

from partitions.digest import row_hashes
from partitions.schema import DATASET_SCHEMAS, PING_SCHEMA

# Copies of the rows held at once here (the spool, the sorted take, the committed rows joined).
_COPIES = 3
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}
_VALUES = ("lat", "lon", "speed_mph", "heading_deg", "odometer_mi", "source")


def memory_bytes(limit: str) -> float:
    """A DuckDB-style memory limit ("1GB", "512MiB") in bytes."""
    text = limit.strip().lower()
    number = text.rstrip("kmgtib")
    return float(number) * _UNITS.get(text[len(number):].strip(), 1e9)


def fits(paths: Sequence[Path], memory_limit: str) -> bool:
    return sum(p.stat().st_size for p in paths) * _COPIES <= memory_bytes(memory_limit)


def read_spool(paths: Sequence[Path]) -> pa.Table:
    """Spooled pings (Arrow IPC files of PING_SCHEMA) as one table with one dictionary per column."""
    tables = [feather.read_table(str(p), memory_map=True) for p in paths]
    return one_chunk(pa.concat_tables(tables) if tables else PING_SCHEMA.empty_table())


def read_parts(paths: Sequence[Path]) -> pa.Table:
    return one_chunk(pa.concat_tables([pq.read_table(str(p)) for p in paths]))


def one_chunk(t: pa.Table) -> pa.Table:
    """Pings in PING_SCHEMA, one chunk, one dictionary per column (what the functions here take)."""
    return t.select(PING_SCHEMA.names).cast(PING_SCHEMA).unify_dictionaries().combine_chunks()


def _codes(column: pa.ChunkedArray, rank: dict[str, int]) -> np.ndarray:
    """Per row, the rank of its vehicle id's text in `rank` (one chunk, as `one_chunk` leaves it)."""
    arr = column.chunk(0) if column.num_chunks else pa.array([], PING_SCHEMA.field("vehicle_id").type)
    table = np.array([rank[v] for v in arr.dictionary.to_pylist()] or [0], dtype=np.int64)
    return table[np.asarray(arr.indices, dtype=np.int64)]


def _ranks(*columns: pa.ChunkedArray) -> dict[str, int]:
    names: set[str] = set()
    for c in columns:
        for chunk in c.chunks:
            names.update(chunk.dictionary.to_pylist())
    return {v: i for i, v in enumerate(sorted(names))}  # str order is UTF-8 byte order, as DuckDB sorts


def _ts(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.int64()).combine_chunks() if column.num_chunks else
                      pa.array([], pa.int64()), dtype=np.int64)


def _order(vehicle: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Row order by (vehicle rank, ts), stable; one integer key when the times span under 2**32 ms."""
    if not len(ts):
        return np.arange(0)
    lo, hi = int(ts.min()), int(ts.max())
    if hi - lo < 2**32 and int(vehicle.max()) < 2**30:
        return np.argsort((vehicle << 32) | (ts - lo), kind="stable")
    return np.lexsort((ts, vehicle))


def sort_dedupe(t: pa.Table) -> pa.Table:
    """One row per (vehicle_id, ts), sorted by it."""
    rank = _ranks(t["vehicle_id"])
    vehicle, ts = _codes(t["vehicle_id"], rank), _ts(t["ts"])
    order = _order(vehicle, ts)
    v, s = vehicle[order], ts[order]
    same_key = (v[1:] == v[:-1]) & (s[1:] == s[:-1])
    if same_key.any():
        # Duplicates (a TSP sending a point twice, a slice pulled twice): the full rule decides.
        keys = pa.table({"v": vehicle, "t": ts, **{c: t[c] for c in _VALUES[:-1]},
                         "source": pc.cast(t["source"], pa.string())})
        order = np.asarray(pc.sort_indices(keys, sort_keys=[("v", "ascending"), ("t", "ascending"),
                                                            *[(c, "ascending") for c in _VALUES]]),
                           dtype=np.int64)  # nulls (and NaN) sort last: Arrow's default, DuckDB's NULLS LAST
        v, s = vehicle[order], ts[order]
        first = np.concatenate([[True], (v[1:] != v[:-1]) | (s[1:] != s[:-1])])
        order = order[first]
    return t.take(pa.array(order))


def new_rows(fresh: pa.Table, committed: Sequence[Path]) -> pa.Table | None:
    """The rows of `fresh` (deduplicated, sorted) whose (vehicle_id, ts) the committed parts lack.

    None when one of them differs from the committed row of its key (the month is merged whole).
    Only the committed row groups in fresh's time range are read (their statistics skip the rest).
    """
    if not fresh.num_rows or not committed:
        return fresh
    ts = fresh["ts"]
    lo, hi = pc.min(ts), pc.max(ts)
    # The keys first (two columns of nine): most partial commits share no key with the parts
    # before them (other vehicles or weeks), and then no value is read at all.
    source = ds.dataset([str(p) for p in committed], format="parquet")
    in_range = (ds.field("ts") >= lo) & (ds.field("ts") <= hi)
    old = source.to_table(columns=["vehicle_id", "ts"], filter=in_range)
    if not old.num_rows:
        return fresh
    old = old.unify_dictionaries().combine_chunks()
    rank = _ranks(fresh["vehicle_id"], old["vehicle_id"])
    fresh_v, fresh_t = _codes(fresh["vehicle_id"], rank), _ts(fresh["ts"])
    keys = pa.table({"v": fresh_v, "t": fresh_t}).join(
        pa.table({"v": _codes(old["vehicle_id"], rank), "t": _ts(old["ts"])}), keys=["v", "t"], join_type="inner")
    if not keys.num_rows:
        return fresh
    old = source.to_table(columns=["vehicle_id", "ts", *_VALUES], filter=in_range)
    old = old.unify_dictionaries().combine_chunks()
    rank = _ranks(fresh["vehicle_id"], old["vehicle_id"])
    left = pa.table({"v": _codes(fresh["vehicle_id"], rank), "t": fresh_t,
                     "i": np.arange(fresh.num_rows, dtype=np.int64),
                     **{c: fresh[c] for c in _VALUES[:-1]}, "source": pc.cast(fresh["source"], pa.string())})
    right = pa.table({"v": _codes(old["vehicle_id"], rank), "t": _ts(old["ts"]),
                      **{f"c_{c}": old[c] for c in _VALUES[:-1]}, "c_source": pc.cast(old["source"], pa.string())})
    hits = left.join(right, keys=["v", "t"], join_type="inner")
    for c in _VALUES:
        a, b = hits[c], hits[f"c_{c}"]
        # IS NOT DISTINCT FROM: equal, or both null
        same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        if not pc.all(same).as_py():
            return None
    keep = np.ones(fresh.num_rows, dtype=bool)
    keep[np.asarray(hits["i"], dtype=np.int64)] = False
    return fresh.filter(pa.array(keep))


def committed_keys(committed: Sequence[Path], ranges: Sequence[tuple[str, int, int]]) -> pa.Table:
    """The committed parts' (vehicle_id as text, ts as int64) between the ranges' first and last times
    (two columns; row groups outside are skipped on their statistics): read once per commit."""
    if not committed or not ranges:
        return pa.table({"v": pa.array([], pa.string()), "t": pa.array([], pa.int64())})
    kind = PING_SCHEMA.field("ts").type
    lo, hi = min(r[1] for r in ranges), max(r[2] for r in ranges)
    old = ds.dataset([str(p) for p in committed], format="parquet").to_table(
        columns=["vehicle_id", "ts"], filter=(ds.field("ts") >= pa.scalar(lo, kind)) & (ds.field("ts") <= pa.scalar(hi, kind)))
    return pa.table({"v": pc.cast(old["vehicle_id"], pa.string()), "t": pc.cast(old["ts"], pa.int64())})


def holds_any(keys: pa.Table, ranges: Sequence[tuple[str, int, int]]) -> bool:
    """Whether `keys` (committed_keys) hold a row in any (vehicle_id, first ts, last ts) range, ends included."""
    if not keys.num_rows:
        return False
    for vehicle, first, last in ranges:
        mine = pc.and_(pc.equal(keys["v"], vehicle), pc.and_(pc.greater_equal(keys["t"], first),
                                                             pc.less_equal(keys["t"], last)))
        if pc.any(mine).as_py():
            return True
    return False


def sorted_parts(t: pa.Table) -> pa.Table:
    """Disjoint parts' rows (one table, `read_parts`) in (vehicle_id, ts) order: compaction."""
    rank = _ranks(t["vehicle_id"])
    return t.take(pa.array(_order(_codes(t["vehicle_id"], rank), _ts(t["ts"]))))


def _plain(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """`t` in `schema`'s columns with dictionaries decoded (Arrow sorts and groups plain values)."""
    t = t.select(schema.names).cast(schema)
    return pa.table({f.name: pc.cast(t[f.name], f.type.value_type) if pa.types.is_dictionary(f.type) else t[f.name]
                     for f in schema})


def _firsts(keys: pa.Table) -> np.ndarray:
    """Per row of a table sorted by `keys`' columns: whether it starts a new run of equal keys."""
    a, b = row_hashes(keys)
    start = np.ones(keys.num_rows, dtype=bool)
    start[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return start


_EVENT_WINNER = ("ts", "kind", "tsp_kind", "lat", "lon", "speed_mph")


def merged(dataset: str, committed: Sequence[Path], spooled: Sequence[Path]) -> pa.Table:
    """What the writer's `_ORDER[dataset]` selects from the committed files and the spool, in its schema."""
    schema = DATASET_SCHEMAS[dataset]
    parts = [pq.read_table(str(p)) for p in committed] + [feather.read_table(str(p)) for p in spooled]
    if dataset == "pings":
        return sort_dedupe(one_chunk(pa.concat_tables([t.select(schema.names).cast(schema) for t in parts])))
    t = pa.concat_tables([_plain(x, schema) for x in parts]) if parts else _plain(schema.empty_table(), schema)
    if not t.num_rows:
        return t.cast(schema)
    if dataset == "events":
        # One row per (source, event_id): the smallest by the winner columns (nulls last), then
        # the rows in (vehicle_id, ts, event_id) order.
        order = pc.sort_indices(t, sort_keys=[(c, "ascending") for c in ("source", "event_id", *_EVENT_WINNER)])
        t = t.take(order)
        t = t.filter(pa.array(_firsts(t.select(["source", "event_id"]))))
        keys = ["vehicle_id", "ts", "event_id"]
    else:
        # DISTINCT: one row per content, then ORDER BY ALL.
        a, b = row_hashes(t)
        _, first = np.unique(np.stack([a, b], axis=1), axis=0, return_index=True)
        t = t.take(pa.array(np.sort(first)))
        keys = schema.names
    return t.take(pc.sort_indices(t, sort_keys=[(c, "ascending") for c in keys])).cast(schema)
