"""The month partition writer: batches of candidate pings in, committed UTC months out.

Batches may hold any months in any order. Each batch is validated (bad rows go to the
`quarantine` dataset with a reason), split by month and spooled to local Arrow IPC files, so
memory is bounded by the batch, not by the history. `commit()` then, per touched month:

1. merges the spool with the month's committed files in DuckDB (which spills to disk), keeping
   one row per (vehicle_id, ts): the smallest by (lat, lon, speed, heading, odometer, source),
   a winner that depends only on the rows, never on arrival order;
2. writes the month sorted by (vehicle_id, ts), zstd, dictionary-encoded ids, as one immutable
   file named by a hash of its content, and fingerprints the content;
3. if the fingerprint equals the committed one, stops: an identical re-ingest changes nothing;
4. uploads the file;
5. commits it to the dataset's Delta table in one transaction that also removes the month's
   previous files, with our record of the window in the commit's metadata (partitions.delta);
6. records the new version in the manifest.

The Delta commit goes before the manifest transaction so that every version the manifest knows
is also in the store's log: a crash between the two leaves a Delta commit of complete data that
the rerun finds already live (and only records), never a manifest entry the store cannot
rebuild. Before step 5 nothing is visible to any reader; after it, every engine that reads the
Delta log sees the whole new month and none of the old one.

A full local disk while spooling or merging (steps before 4) is a `DiskFull` naming the work
directory by its setting, never its path; nothing was uploaded or committed by then.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq

from common import names
from common.disk import disk_full_as
from common.states import CommitStatus
from partitions import layout
from partitions.delta import WINDOW_KEY, DataFile, lake_for
from partitions.manifest import Manifest, RawPartition
from partitions.schema import (
    DATASET_SCHEMAS,
    FUTURE_SLACK_MS,
    MIN_TS_MS,
    Split,
    drivers_table,
    split_valid,
    split_valid_events,
    split_valid_hos,
)
from partitions.store import LocalStore, ObjectStore

ROW_GROUP_ROWS = 1_000_000
# How a full work disk is named to an operator: the setting that places it and which part of it.
WORK_SETTING, WORK_PART = "FLEETLAKE_DATA_DIR", "work/spool"
_FORMAT = "pings-v1"  # part of every fingerprint: bump if the canonical encoding changes

_ORDER = {
    "pings": ("SELECT * FROM src QUALIFY row_number() OVER (PARTITION BY vehicle_id, ts ORDER BY lat, lon, "
              "speed_mph NULLS LAST, heading_deg NULLS LAST, odometer_mi NULLS LAST, source) = 1 "
              "ORDER BY vehicle_id, ts"),
    "quarantine": "SELECT DISTINCT * FROM src ORDER BY ALL",
    # One row per TSP event id; the TSP may re-send an event with corrected fields: the winner is
    # again a function of the rows alone.
    "events": ("SELECT * FROM src QUALIFY row_number() OVER (PARTITION BY source, event_id ORDER BY ts, kind, "
               "tsp_kind, lat NULLS LAST, lon NULLS LAST, speed_mph NULLS LAST) = 1 "
               "ORDER BY vehicle_id, ts, event_id"),
    # Drivers and hours of service: a month of them is pulled whole and replaces the committed
    # month (REPLACED), so the rows are only put in a stable order here.
    **dict.fromkeys(("drivers", "assignments", "hos_logs", "hos_violations"), "SELECT DISTINCT * FROM src ORDER BY ALL"),
}
# Datasets whose month is pulled whole every time: a commit replaces the committed month instead
# of merging into it, so a record the TSP edited or withdrew does not linger.
REPLACED = frozenset({"drivers", "assignments", "hos_logs", "hos_violations"})


@dataclass(frozen=True)
class CommitResult:
    dataset: str
    month: str
    status: CommitStatus
    rows: int
    seq: int
    fingerprint: str


class MonthWriter:
    """Write one fleet's pings. Use as a context manager; nothing is visible before commit()."""

    def __init__(self, store: ObjectStore, manifest: Manifest, fleet_id: str, *, pull_id: str | None = None,
                 work_dir: Path | None = None, now_ms: int | None = None, memory_limit: str = "1GB") -> None:
        self.store = store
        self.manifest = manifest
        self.fleet_id = names.fleet_id(fleet_id)
        self.pull_id = pull_id
        self.now_ms = now_ms
        self.memory_limit = memory_limit
        with disk_full_as(WORK_SETTING, WORK_PART, work_dir or Path(tempfile.gettempdir())):
            if work_dir is not None:
                work_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="fleetlake-writer-", dir=work_dir))
        self._spooled: dict[tuple[str, str], list[Path]] = {}
        self.accepted = 0
        self.accepted_events = 0
        self.quarantined: Counter[str] = Counter()
        self.nulled: Counter[str] = Counter()  # optional values made null on accepted pings, by reason
        self.accepted_hos: Counter[str] = Counter()  # accepted rows of the HOS datasets, by dataset

    def __enter__(self) -> MonthWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def _disk(self) -> AbstractContextManager[None]:
        return disk_full_as(WORK_SETTING, WORK_PART, self._dir)

    # ------------------------------------------------------------------ input
    def add(self, batch: pa.Table) -> None:
        """Validate and spool a batch of candidate pings (partitions.schema.CANDIDATE_SCHEMA)."""
        now_ms = self._now()
        self._accept("pings", split_valid(batch, now_ms), now_ms)

    def add_events(self, batch: pa.Table) -> None:
        """Validate and spool a batch of candidate TSP events (EVENT_CANDIDATE_SCHEMA)."""
        now_ms = self._now()
        self._accept("events", split_valid_events(batch, now_ms), now_ms)

    def add_hos(self, dataset: str, batch: pa.Table) -> None:
        """Validate and spool a batch of candidate assignments, HOS logs or HOS violations
        (partitions.schema.HOS_DATASETS), already cut to the month they belong to."""
        now_ms = self._now()
        self._accept(dataset, split_valid_hos(dataset, batch, now_ms), now_ms)

    def add_drivers(self, month: str, batch: pa.Table) -> None:
        """Spool the fleet's drivers (DRIVER_CANDIDATE_SCHEMA) as the snapshot of `month`."""
        table = drivers_table(batch)
        self._spool("drivers", table, np.full(table.num_rows, np.datetime64(names.month(month), "M")))

    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _accept(self, dataset: str, split: Split, now_ms: int) -> None:
        valid, bad = split.valid, split.quarantine
        if valid.num_rows:
            fleets = pc.unique(valid["fleet_id"].combine_chunks().dictionary_decode()).to_pylist()
            if fleets != [self.fleet_id]:
                raise ValueError(f"writer for fleet {self.fleet_id} was given rows of {sorted(set(fleets))}")
        if dataset == "pings":
            self.accepted += valid.num_rows
        elif dataset == "events":
            self.accepted_events += valid.num_rows
        else:
            self.accepted_hos[dataset] += valid.num_rows
        for reason, n in Counter(bad["reason"].to_pylist()).items():
            self.quarantined[reason] += n
        self.nulled.update(split.nulled)
        self._spool(dataset, valid, _months(valid["ts" if "ts" in valid.column_names else "start_ts"]))
        if bad.num_rows:
            # Quarantine rows file under the month of their timestamp when it is plausible,
            # else under the month they were received in.
            ts_ms = pc.cast(bad["ts"], pa.int64())
            plausible = pc.fill_null(pc.and_(pc.greater_equal(ts_ms, MIN_TS_MS),
                                             pc.less_equal(ts_ms, now_ms + FUTURE_SLACK_MS)), False)
            ts = np.where(np.asarray(plausible), np.asarray(pc.fill_null(ts_ms, 0)), now_ms)
            self._spool("quarantine", bad, ts.astype("datetime64[ms]").astype("datetime64[M]"))

    def _spool(self, dataset: str, table: pa.Table, months: np.ndarray) -> None:
        """Append the batch's rows to per-month spool files (Arrow IPC: a near-memcpy write)."""
        if not table.num_rows:
            return
        for month in np.unique(months):
            key = names.month(str(month))
            part = table.filter(pa.array(months == month))
            files = self._spooled.setdefault((dataset, key), [])
            path = self._dir / f"{dataset}-{key}-{len(files):06d}.arrow"
            with self._disk():
                feather.write_feather(part, path, compression="uncompressed")
            files.append(path)

    # ------------------------------------------------------------------ commit
    def commit(self) -> list[CommitResult]:
        results = []
        for (dataset, month), files in sorted(self._spooled.items()):
            results.append(self._commit_month(dataset, month, files))
            for f in files:
                f.unlink(missing_ok=True)
        self._spooled.clear()
        return results

    def _commit_month(self, dataset: str, month: str, spooled: list[Path]) -> CommitResult:
        current = self.manifest.raw_partition(self.fleet_id, dataset, month)
        out = self._dir / f"merged-{dataset}-{month}.parquet"
        with self._disk():
            committed = [] if dataset in REPLACED else self._local_copies(current)
            rows, fingerprint = _merge(committed, spooled, out, dataset, self._dir,
                                       self.memory_limit)
        if current is not None and current.fingerprint == fingerprint:
            out.unlink(missing_ok=True)
            return CommitResult(dataset, month, CommitStatus.UNCHANGED, current.rows, current.seq, fingerprint)
        key = layout.raw_file(dataset, self.fleet_id, month, fingerprint[:24])
        self.store.put_file(key, out)
        part = RawPartition(self.fleet_id, dataset, month, (current.seq if current else 0) + 1, (key,), rows,
                            out.stat().st_size, fingerprint, datetime.now(timezone.utc), self.pull_id)
        out.unlink(missing_ok=True)
        lake_for(self.store).commit_window(
            layout.raw_table(dataset), DATASET_SCHEMAS[dataset], self.fleet_id, month,
            [DataFile(key, part.bytes, rows)],
            {WINDOW_KEY: json.dumps(part.to_json(), sort_keys=True), "fleetlake.fingerprint": fingerprint,
             "fleetlake.pull_id": self.pull_id or ""})
        self.manifest.commit_raw(part)
        return CommitResult(dataset, month, CommitStatus.COMMITTED, rows, part.seq, fingerprint)

    def _local_copies(self, current: RawPartition | None) -> list[Path]:
        if current is None:
            return []
        if isinstance(self.store, LocalStore):
            return [self.store.path(k) for k in current.files]
        paths = []
        for i, key in enumerate(current.files):
            p = self._dir / f"committed-{i}-{Path(key).name}"
            self.store.get_file(key, p)
            paths.append(p)
        return paths


def _merge(committed: list[Path], spooled: list[Path], out: Path, dataset: str, tmp: Path,
           memory_limit: str) -> tuple[int, str]:
    """Deduplicate and sort committed Parquet plus spooled Arrow IPC into `out`.

    Returns (rows, content fingerprint).
    """
    schema = DATASET_SCHEMAS[dataset]
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{_memory(memory_limit)}'")
        con.execute("SET temp_directory = ?", [str(tmp / "duckdb-spill")])
        con.execute("SET preserve_insertion_order = true")
        con.register("spool", ds.dataset([str(p) for p in spooled], format="ipc"))
        if committed:
            con.read_parquet([str(p) for p in committed]).create_view("committed")
            con.execute("CREATE VIEW src AS SELECT * FROM committed UNION ALL BY NAME SELECT * FROM spool")
        else:
            con.execute("CREATE VIEW src AS SELECT * FROM spool")
        reader = con.sql(_ORDER[dataset]).to_arrow_reader(ROW_GROUP_ROWS)
        digests = [hashlib.blake2b(digest_size=20) for _ in schema.names]
        rows = 0
        with pq.ParquetWriter(out, schema, compression="zstd", compression_level=3, use_dictionary=True,
                              write_statistics=True) as w:
            for batch in reader:
                table = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
                for digest, col in zip(digests, table.columns):
                    _hash_column(digest, col)
                w.write_table(table, row_group_size=ROW_GROUP_ROWS)
                rows += table.num_rows
        total = hashlib.blake2b(f"{_FORMAT}|{dataset}|{rows}".encode(), digest_size=20)
        for d in digests:
            total.update(d.digest())
        return rows, total.hexdigest()
    finally:
        con.close()


def _months(ts: pa.ChunkedArray) -> np.ndarray:
    """UTC calendar month of each timestamp (numpy: ~30x faster than strftime)."""
    return np.asarray(pc.cast(ts, pa.int64())).astype("datetime64[ms]").astype("datetime64[M]")


def _hash_column(digest: hashlib.blake2b, col: pa.ChunkedArray) -> None:
    """Feed a column's logical content (not Parquet bytes, which vary with library versions).

    Each column has its own digest and is fed value by value in row order, so the result does
    not depend on how DuckDB happened to cut the rows into batches.
    """
    arr = col.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    digest.update(np.asarray(arr.is_null()).tobytes())
    if pa.types.is_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
        digest.update(np.diff(offsets).astype(np.int32).tobytes())
        data = arr.buffers()[2]
        if data is not None and len(arr):
            digest.update(memoryview(data)[int(offsets[0]):int(offsets[-1])])
    elif pa.types.is_timestamp(arr.type):
        digest.update(np.asarray(pc.fill_null(arr.cast(pa.int64()), 0)).tobytes())
    else:
        digest.update(np.asarray(pc.fill_null(arr, 0)).tobytes())


def _memory(limit: str) -> str:
    if not limit.replace(".", "").rstrip("KMGTBkmgtib").isdigit():
        raise ValueError(f"invalid memory limit {limit!r}")
    return limit
