"""A fleet-month walked vehicle by vehicle, so a flow holds one vehicle-month, not the fleet-month.

Committed pings are one file per (fleet, month) sorted by (vehicle_id, ts) (partitions/writer.py),
so each vehicle is one contiguous run of rows and the file can be read as a stream of
vehicle-months. A walking flow (`Flow.walk`) says two things:

- `vehicle(inp, context)`: its output rows for one vehicle and a small *part* (sums, counts,
  per-trip or per-day items: never per-ping arrays) from which the fleet roll-up is built;
- `fleet(inp, context, parts)`: the fleet roll-up row(s) from every vehicle's part.

The one rule shared across vehicles is the fleet-month's median driving interval
(track.Pairs.moving_interval_s, used for driving time, segments and episode lengths). A first
pass over just (vehicle_id, ts, speed) finds it exactly: the median of integer millisecond gaps
is read off their merged counts, so every vehicle sees the value the whole-month track would
compute, bit for bit.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.flows.base import FlowInput, Walk
from ingest.flows.motion import MOVING_MPH, still
from ingest.flows.track import GAP_S, Track, load_vehicle, share_speed_free, sorted_by_vehicle, track_of

THREADS = 2  # vehicles computed at once within one month task
BATCH_ROWS = 1 << 16  # rows decoded at a time; a vehicle-month is the batches that hold it
PASS1_COLUMNS = ("vehicle_id", "ts", "speed_mph")

VehicleTables = Callable[[tuple[str, ...] | None], Iterable[pa.Table]]  # columns -> one table per vehicle


def parts_walk(part: Callable[[FlowInput, Any], Any], merge: Callable[[list[Any]], Any],
               row: Callable[[Any], dict[str, Any]]) -> Walk:
    """A walk for a flow with one row per vehicle and one fleet row, both `row(part)`: a vehicle's
    from its own part (`part(inp, context)`, None for no row), the fleet's from `merge` of them all."""

    def vehicle(inp: FlowInput, ctx: Any) -> tuple[list[dict[str, Any]], Any]:
        p = part(inp, ctx)
        if p is None:
            return [], None
        return [_keyed(inp, track_of(inp).vehicles[0], row(p))], p

    def fleet(inp: FlowInput, _ctx: Any, parts: list[Any]) -> list[dict[str, Any]]:
        have = [p for p in parts if p is not None]
        return [_keyed(inp, None, row(merge(have)))] if have else []

    return Walk(vehicle, fleet)


def _keyed(inp: FlowInput, vehicle_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    return {"fleet_id": inp.fleet_id, "month": inp.month, "vehicle_id": vehicle_id, **values,
            "complete_month": inp.complete}


def total(values: Iterable[float]) -> float:
    """A fleet sum of per-vehicle sums (vehicle order, numpy's pairwise sum: deterministic)."""
    return float(np.sum(np.fromiter(values, np.float64)))


@dataclass(frozen=True)
class Intervals:
    """The fleet-month's median driving interval on the plain track and on the still track (motion.py)."""

    moving_s: float
    still_s: float


class Counts:
    """Counts of integer keys standing for values key / scale: exact order statistics of many
    values in the memory of their distinct ones (gaps in ms, speeds on a 0.01 mph grid)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.keys = np.empty(0, np.int64)  # sorted, distinct
        self.counts = np.empty(0, np.int64)

    def add(self, keys: np.ndarray) -> None:
        if keys.size:
            k, n = np.unique(keys, return_counts=True)
            self._combine([self.keys, k.astype(np.int64)], [self.counts, n.astype(np.int64)])

    def merge(self, others: Iterable[Counts]) -> None:
        others = list(others)
        self._combine([self.keys, *(o.keys for o in others)], [self.counts, *(o.counts for o in others)])

    def _combine(self, keys: list[np.ndarray], counts: list[np.ndarray]) -> None:
        k, inv = np.unique(np.concatenate(keys), return_inverse=True)
        n = np.zeros(k.size, np.int64)
        np.add.at(n, inv, np.concatenate(counts))
        self.keys, self.counts = k, n

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def _order(self, ranks: list[int]) -> list[float]:
        """The values at 0-based ranks of the sorted values."""
        ends = np.cumsum(self.counts)
        return [int(self.keys[int(np.searchsorted(ends, i, side="right"))]) / self.scale for i in ranks]

    def median(self) -> float | None:
        """np.median of the values, bit for bit; None without values."""
        n = self.total
        if n == 0:
            return None
        # numpy's median is the mean of the middle one or two values
        values = self._order([n // 2] if n % 2 else [n // 2 - 1, n // 2])
        return float(np.mean(np.array(values, dtype=np.float64)))

    def quantile(self, q: float) -> float | None:
        """np.quantile(values, q) (linear), bit for bit; None without values."""
        n = self.total
        if n == 0:
            return None
        lo = int(np.floor(q * (n - 1)))
        if lo >= n - 1:
            return self._order([n - 1])[0]
        a, b = self._order([lo, lo + 1])
        # the same interpolation numpy does between the two neighbours
        return float(np.quantile(np.array([a, b]), q * (n - 1) - lo))


def gap_counts() -> Counts:
    """Counts of gaps between pings in milliseconds, whose order statistics are in seconds."""
    return Counts(1000.0)


def steady_gaps_ms(ts_ms: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """One vehicle's gaps between consecutive pings moving at both ends (Pairs.moving_interval_s's sample)."""
    gaps = np.diff(ts_ms)
    sp0, sp1 = speed[:-1], speed[1:]
    steady = (sp0 > 0) & (sp1 > 0) & (gaps / 1000.0 <= GAP_S) & (gaps > 0)
    return gaps[steady]


def intervals(tables: Iterable[pa.Table]) -> Intervals:
    """The fleet-month's driving intervals from a pass over every vehicle's (ts, speed)."""
    plain, slow = gap_counts(), gap_counts()
    for t in tables:
        ts = pc.cast(t["ts"], pa.int64()).to_numpy()
        sp = np.asarray(pc.cast(pc.fill_null(t["speed_mph"], 0.0), pa.float64()).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
        plain.add(steady_gaps_ms(ts, sp))
        slow.add(steady_gaps_ms(ts, np.where(sp < MOVING_MPH, 0.0, sp)))
    return Intervals(plain.median() or 1.0, slow.median() or 1.0)


def vehicle_shared(table: pa.Table, iv: Intervals) -> dict[str, object]:
    """The groundwork a vehicle's flows share (track.track_of, motion.moving_track_of), with the
    fleet-month's intervals in place of the vehicle's own."""
    tr = load_vehicle(table)
    _set_interval(tr, iv.moving_s)
    moving = still(tr)
    share_speed_free(tr, moving)
    _set_interval(moving, iv.still_s)
    return {"track": tr, "moving_track": moving}


def _set_interval(tr: Track, seconds: float) -> None:
    tr.pairs.__dict__["moving_interval_s"] = seconds  # fills the cached_property


def split_by_vehicle(table: pa.Table) -> Iterator[pa.Table]:
    """An in-memory month as one table per vehicle, sorted as committed files are."""
    if table.num_rows == 0:
        return
    if not sorted_by_vehicle(table):
        ids = table.schema.field("vehicle_id").type
        if pa.types.is_dictionary(ids):
            # Arrow cannot sort on a dictionary column: a month left in parts (a pull stopped
            # before its compaction) is read with the files' own dictionaries.
            table = table.set_column(table.schema.get_field_index("vehicle_id"), "vehicle_id",
                                     table["vehicle_id"].cast(ids.value_type))
        table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    yield from _runs(iter(table.to_batches()))


def stream_by_vehicle(paths: list[str], columns: tuple[str, ...] | None) -> Iterator[pa.Table]:
    """A committed month's pings file(s) as one table per vehicle, decoding BATCH_ROWS at a time.

    A month is one file sorted by vehicle; a month still in parts (appended by a pull stopped before
    it compacted them) is read whole and sorted.
    """
    cols = list(columns) if columns else None
    if len(paths) != 1:
        yield from split_by_vehicle(pa.concat_tables(pq.read_table(p, columns=cols) for p in paths))
        return
    # Ids decoded as a dictionary: a vehicle change is a change of index, no string is compared.
    # pre_buffer=False: the default pre-buffers every column chunk of the file it reads, holding
    # the whole month in memory (0.7 GB of 36 M pings) for the length of the stream.
    with pq.ParquetFile(paths[0], read_dictionary=["vehicle_id"], pre_buffer=False) as f:
        yield from _runs(f.iter_batches(batch_size=BATCH_ROWS, columns=cols))


def stream_between(paths: list[str], columns: tuple[str, ...] | None, start_ms: int, end_ms: int
                   ) -> Iterator[pa.Table]:
    """The pings of [start_ms, end_ms) in committed month file(s) (an ISO week's one or two months), one
    table per vehicle: only the window's rows are decoded and held."""
    cols = list(columns) if columns else None
    parts = []
    for p in paths:
        ts = pq.read_schema(p).field("ts").type  # the bounds in the file's own type (unit, time zone)
        lo, hi = pa.scalar(start_ms, pa.timestamp("ms")).cast(ts), pa.scalar(end_ms, pa.timestamp("ms")).cast(ts)
        parts.append(pq.read_table(p, columns=cols, filters=[("ts", ">=", lo), ("ts", "<", hi)]))
    yield from split_by_vehicle(pa.concat_tables(parts))


def _runs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Consecutive rows of one vehicle, across batch boundaries; a vehicle seen twice is an error
    (the writer's sort order is what makes memory one vehicle-month)."""
    carry: list[pa.RecordBatch] = []
    carry_id: str | None = None
    seen: set[str | None] = set()
    for b in batches:
        n = b.num_rows
        if n == 0:
            continue
        ids = b.column(b.schema.get_field_index("vehicle_id"))
        cuts = (np.flatnonzero(_changes(ids)) + 1).tolist()
        if carry_id is None:
            carry_id = ids[0].as_py()
        elif ids[0].as_py() != carry_id:
            cuts = [0, *cuts]
        prev = 0
        for cut in cuts:
            if cut > prev:
                carry.append(b.slice(prev, cut - prev))
            yield _emit(carry, carry_id, seen)
            carry, prev = [], cut
            carry_id = ids[cut].as_py()
        carry.append(b.slice(prev))
    if carry:
        yield _emit(carry, carry_id, seen)


def _changes(ids: pa.Array) -> np.ndarray:
    """Whether each row's id differs from the previous row's (length n - 1)."""
    if pa.types.is_dictionary(ids.type):
        idx = ids.indices.to_numpy(zero_copy_only=False)
        return np.asarray(idx[1:] != idx[:-1])
    ids = pc.cast(ids, pa.string())
    n = len(ids)
    return np.asarray(pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False))


def _emit(batches: list[pa.RecordBatch], vid: str | None, seen: set[str | None]) -> pa.Table:
    if vid in seen:
        raise ValueError(f"pings of vehicle {vid!r} are not contiguous: the month file is not sorted by vehicle")
    seen.add(vid)
    return pa.Table.from_batches(batches)


def by_vehicle_rows(table: pa.Table | None) -> dict[str, pa.Table]:
    """A small per-month input (safety events) split by vehicle_id."""
    if table is None or table.num_rows == 0:
        return {}
    ids = pc.cast(table["vehicle_id"], pa.string()).to_pylist()
    rows: dict[str, list[int]] = {}
    for i, v in enumerate(ids):
        rows.setdefault(v, []).append(i)
    return {v: table.take(pa.array(r)) for v, r in rows.items()}


def run(flows: list[Any], fleet_id: str, month: str, complete: bool, vehicles: VehicleTables,
        others: dict[str, pa.Table]) -> dict[tuple[str, int], pa.Table | Exception]:
    """Every walking flow of one fleet-month, in one pass over the vehicles after the interval pass.

    `flows` are Flows with a `walk`; `vehicles(columns)` streams the month's pings one vehicle at
    a time (it is called twice: the interval pass reads three columns); `others` holds the
    month's other inputs whole. A flow that raises fails alone: its entry is the exception.
    """
    iv = intervals(vehicles(PASS1_COLUMNS))
    out: dict[tuple[str, int], pa.Table | Exception] = {}
    ctx: dict[tuple[str, int], Any] = {}
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    parts: dict[tuple[str, int], list[Any]] = {}
    for f in flows:
        key = (f.name, f.version)
        try:
            ctx[key] = f.walk.context(_fleet_input(f, fleet_id, month, complete, others)) if f.walk.context else None
            rows[key], parts[key] = [], []
        except Exception as e:  # noqa: BLE001 - one flow's failure is its window's
            out[key] = e
    # per-vehicle inputs handed to each vehicle; one without vehicles (HOS violations, per driver)
    # only reaches the flow's context
    split = {d: by_vehicle_rows(t) for d, t in others.items() if "vehicle_id" in t.column_names}
    columns: list[str] | None = []
    for f in flows:
        if not f.columns:
            columns = None
        elif columns is not None:
            columns += [c for c in f.columns if c not in columns]

    def one_vehicle(vt: pa.Table) -> dict[tuple[str, int], tuple[list[dict[str, Any]], Any] | Exception]:
        shared = vehicle_shared(vt, iv)
        vid = str(vt["vehicle_id"][0].as_py())
        done: dict[tuple[str, int], tuple[list[dict[str, Any]], Any] | Exception] = {}
        for f in flows:
            key = (f.name, f.version)
            if key in out:
                continue
            tables = {"pings": vt.select(list(f.columns)) if f.columns else vt}
            for d in f.inputs:
                if d != "pings" and d in split:
                    tables[d] = split[d].get(vid, others[d].slice(0, 0))
            try:
                done[key] = f.walk.vehicle(FlowInput(fleet_id, month, tables, complete, shared), ctx[key])
            except Exception as e:  # noqa: BLE001
                done[key] = e
        return done

    def collect(done: dict[tuple[str, int], tuple[list[dict[str, Any]], Any] | Exception]) -> None:
        for key, result in done.items():
            if key in out:
                continue
            if isinstance(result, Exception):
                out[key] = result
            else:
                rows[key] += result[0]
                parts[key].append(result[1])

    # Vehicles run on THREADS threads (numpy and Arrow release the GIL for most of the work) and
    # are collected in stream order, so the output does not depend on which thread finished first.
    # At most THREADS + 1 vehicle-months are held at once.
    stream = vehicles(tuple(columns) if columns is not None else None)
    if THREADS <= 1:
        for vt in stream:
            collect(one_vehicle(vt))
        return _finish(flows, fleet_id, month, complete, others, ctx, rows, parts, out)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="fleetlake-walk") as pool:
        pending: deque[Future[dict[tuple[str, int], tuple[list[dict[str, Any]], Any] | Exception]]] = deque()
        for vt in stream:
            pending.append(pool.submit(one_vehicle, vt))
            if len(pending) > THREADS:
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    return _finish(flows, fleet_id, month, complete, others, ctx, rows, parts, out)


def _finish(flows: list[Any], fleet_id: str, month: str, complete: bool, others: dict[str, pa.Table],
            ctx: dict[tuple[str, int], Any], rows: dict[tuple[str, int], list[dict[str, Any]]],
            parts: dict[tuple[str, int], list[Any]],
            out: dict[tuple[str, int], pa.Table | Exception]) -> dict[tuple[str, int], pa.Table | Exception]:
    """Each flow's table: its vehicle rows, then the roll-up from its parts."""
    for f in flows:
        key = (f.name, f.version)
        if key in out:
            continue
        try:
            fleet = f.walk.fleet(_fleet_input(f, fleet_id, month, complete, others), ctx[key], parts[key])
            out[key] = pa.Table.from_pylist(rows[key] + fleet, f.schema)
        except Exception as e:  # noqa: BLE001
            out[key] = e
    return out


def _fleet_input(flow: Any, fleet_id: str, month: str, complete: bool, others: dict[str, pa.Table]) -> FlowInput:
    return FlowInput(fleet_id, month, {d: t for d, t in others.items() if d in flow.inputs}, complete)


def compute(flow: Any, inp: FlowInput) -> pa.Table:
    """A walking flow's `compute` on a month held in memory (tests, benches): the same walk."""
    pings = inp.tables.get("pings")
    others = {d: t for d, t in inp.tables.items() if d != "pings"}

    def vehicles(columns: tuple[str, ...] | None) -> Iterator[pa.Table]:
        if pings is None:
            return iter(())
        return split_by_vehicle(pings.select(list(columns)) if columns else pings)

    result = run([flow], inp.fleet_id, inp.month, inp.complete, vehicles, others)[(flow.name, flow.version)]
    if isinstance(result, Exception):
        raise result
    return result
