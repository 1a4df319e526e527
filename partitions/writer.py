"""The month partition writer: batches of candidate pings in, committed UTC months out.

Batches may hold any months in any order. Each batch is validated (bad rows go to the
`quarantine` dataset with a reason), split by month and spooled to local Arrow IPC files, so
memory is bounded by the batch, not by the history. `commit()` then, per touched month:

1. merges the spool with the month's committed files in DuckDB (which spills to disk), keeping
   one row per (vehicle_id, ts): the smallest by (lat, lon, speed, heading, odometer, source),
   a winner that depends only on the rows, never on arrival order;
2. writes the month sorted by (vehicle_id, ts), zstd, dictionary-encoded ids, as one immutable
   file named by its content, and fingerprints the content (partitions.digest: additive);
3. if the fingerprint equals the committed one, stops: an identical re-ingest changes nothing;
4. uploads the file;
5. commits it to the dataset's Delta table in one transaction that also removes the month's
   previous files, with our record of the window in the commit's metadata (partitions.delta);
6. records the new version in the manifest.

A partial commit of pings for a month that already holds rows (a month still landing, the open
month, a refresh's lookback) appends instead: steps 1-2 take only the spool's rows whose
(vehicle_id, ts) the month lacks (rows equal to committed ones are dropped; a differing one
makes it a whole merge, so the winner rule holds), write them as one more part, and step 5 adds
that part without removing any. The month's fingerprint is its previous one plus the part's
digest, so landing a month costs the same whether it is committed once or in sixteen parts.
`commit(complete=...)` and `compact` merge a month's parts into one file (same rows, same
fingerprint) when it completes, and `fleetlake gc` compacts what is left in parts.

A pull's workers do steps 1-2 for their own slices (`spool_batch(prepared=True)`: each month of a
slice's pings deduplicated, sorted, written as a part and digested, a `PreparedPart`), so the one
committer only checks them: parts that share no (vehicle_id, ts) with each other or with the
committed month are published as written, a part that shares keys with the month (a re-pulled
lookback) is cut to its new rows, and parts that overlap each other are merged as a spool.

The Delta commit goes before the manifest transaction so that every version the manifest knows
is also in the store's log: a crash between the two leaves a Delta commit of complete data that
the rerun finds already live (and only records), never a manifest entry the store cannot
rebuild. Before step 5 nothing is visible to any reader; after it, every engine that reads the
Delta log sees the whole new month and none of the old one.

A full local disk while spooling or merging (steps before 4) is a `DiskFull` naming the work
directory by its setting, never its path; nothing was uploaded or committed by then.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
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
from common.months import month_of_ms
from common.states import CommitStatus
from partitions import landing, layout
from partitions.delta import WINDOW_KEY, DataFile, lake_for
from partitions.digest import EMPTY, Digest, digest_table
from partitions.manifest import Manifest, RawPartition
from partitions.schema import (
    DATASET_SCHEMAS,
    FUTURE_SLACK_MS,
    MIN_TS_MS,
    PING_SCHEMA,
    Split,
    drivers_table,
    split_valid,
    split_valid_events,
    split_valid_hos,
)
from partitions.store import LocalStore, ObjectStore

ROW_GROUP_ROWS = 1_000_000
# zstd levels: a month's file (what readers keep reading) at 3; a part of a month still landing,
# compacted when the month completes, at 1 (0.23 vs 0.38 us/ping to write, 10% larger): landing a
# month in sixteen commits then costs about what one commit does.
MONTH_ZSTD, PART_ZSTD = 3, 1
# How a full work disk is named to an operator: the setting that places it and which part of it.
WORK_SETTING, WORK_PART = "FLEETLAKE_DATA_DIR", "work/spool"

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
# Datasets whose month is pulled whole every time (MonthWriter.replace_month): a commit replaces the
# committed month instead of merging into it, so a record the TSP edited or withdrew does not
# linger, and a month the TSP has nothing left of becomes empty. (The drivers snapshot is replaced
# whole too, with the fleet's other months: layout.SNAPSHOT_DATASETS.)
REPLACED = frozenset({"assignments", "hos_logs", "hos_violations"})


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
                 work_dir: Path | None = None, now_ms: int | None = None, memory_limit: str = "1GB",
                 compactor: Callable[[list[Path], Path], None] | None = None) -> None:
        self.store = store
        self.manifest = manifest
        self.fleet_id = names.fleet_id(fleet_id)
        self.pull_id = pull_id
        self.now_ms = now_ms
        self.memory_limit = memory_limit
        # Where a completed month's parts are sorted into one file (`compact_parts`): a pull worker
        # process when the pull has local ones (ingest.pull.workers), so the one committer only
        # uploads and commits it; None: here.
        self.compactor = compactor
        with disk_full_as(WORK_SETTING, WORK_PART, work_dir or Path(tempfile.gettempdir())):
            if work_dir is not None:
                work_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="fleetlake-writer-", dir=work_dir))
        self._spooled: dict[tuple[str, str], list[Path]] = {}
        self._whole: set[tuple[str, str]] = set()  # (dataset, month) pulled whole: replaced on commit, also by nothing
        self._prepared: dict[str, list[PreparedPart]] = {}  # pings parts a pull worker sorted and wrote, by month
        self.accepted = 0
        self.accepted_events = 0
        self.quarantined: Counter[str] = Counter()
        self.nulled: Counter[str] = Counter()  # optional values made null on accepted pings, by reason
        self.accepted_hos: Counter[str] = Counter()  # accepted rows of the HOS datasets, by dataset
        self._n = 0
        self.appended: set[tuple[str, str]] = set()  # (dataset, month) this writer left in parts
        # Windows committed to Delta, not yet recorded in the manifest, and whether each was an append:
        # recorded together when the commit (or compact) ends, in one transaction (Manifest.commit_raws).
        self._unrecorded: list[tuple[RawPartition, bool]] = []

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

    def add_drivers(self, batch: pa.Table) -> None:
        """Spool the fleet's drivers (DRIVER_CANDIDATE_SCHEMA): all of them, as the TSP lists them now.

        The commit makes them the fleet's drivers snapshot, replacing the one before whole (a
        driver the TSP no longer lists is gone from the store, as personal data should be); it is
        filed under the month of the writer's now, the month it was taken in. No rows is a
        snapshot too: a fleet without drivers keeps none.
        """
        table = drivers_table(batch)
        key = month_of_ms(self._now())
        self._whole.add(("drivers", key))
        if not table.num_rows:
            return
        path = self._dir / f"drivers-{key}-w{self._seq():08d}.arrow"
        with self._disk():
            feather.write_feather(table, path, compression="uncompressed")
        self._spooled.setdefault(("drivers", key), []).append(path)

    def replace_month(self, dataset: str, month: str) -> None:
        """Declare `month` of a REPLACED dataset pulled whole: its commit replaces the committed month
        with what was spooled for it, also when that is nothing (every record withdrawn or edited away)."""
        if dataset not in REPLACED:
            raise ValueError(f"{dataset} is not a dataset whose months are replaced")
        self._whole.add((names.dataset(dataset), names.month(month)))

    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _accept(self, dataset: str, split: Split, now_ms: int) -> None:
        self.adopt(spool_split(self.fleet_id, dataset, split, now_ms, self._dir, f"w{self._seq():08d}"))

    def _seq(self) -> int:
        self._n += 1
        return self._n

    def adopt(self, spooled: Spooled) -> None:
        """Take over a batch validated and spooled elsewhere (a pull worker): its files, its counts."""
        self.accepted += spooled.accepted
        self.accepted_events += spooled.accepted_events
        self.quarantined.update(spooled.quarantined)
        self.nulled.update(spooled.nulled)
        self.accepted_hos.update(spooled.accepted_hos)
        for dataset, month, local in spooled.files:
            self._spooled.setdefault((dataset, names.month(month)), []).append(Path(local))
        for part in spooled.parts:
            self._prepared.setdefault(names.month(part.month), []).append(part)
        for dataset, month, blob in spooled.blobs:
            target = self._dir / f"{dataset}-{names.month(month)}-b{self._seq():08d}.arrow"
            with self._disk():
                target.write_bytes(blob)
            self._spooled.setdefault((dataset, month), []).append(target)

    @property
    def spool_dir(self) -> Path:
        """Where local pull workers spool the files this writer adopts (removed with the writer)."""
        return self._dir

    # ------------------------------------------------------------------ commit
    def commit(self, complete: Collection[str] | None = None) -> list[CommitResult]:
        """Commit every spooled month.

        With `complete` (a pull's partial commits), pings of a month that already holds rows are
        appended as one more part, unless the month is in `complete`: then its parts and the spool
        are merged into one file (compacted). Without it, every month is merged whole.
        """
        results = []
        windows = sorted(set(self._spooled) | self._whole | {("pings", m) for m in self._prepared})
        # The windows' current versions in one query, not one per window.
        held = self.manifest.raw_windows(self.fleet_id, [m for d, m in windows if d not in layout.SNAPSHOT_DATASETS]) \
            if windows else {}
        try:
            for dataset, month in windows:
                files = self._spooled.get((dataset, month), [])
                prepared = self._prepared.get(month, []) if dataset == "pings" else []
                compact = complete is None or month in complete
                whole = (dataset, month) in self._whole
                if dataset in layout.SNAPSHOT_DATASETS:
                    results.append(self._commit_snapshot(dataset, month, files))
                else:
                    results.append(self._commit_month(dataset, month, files, compact=compact, whole=whole,
                                                      prepared=prepared, current=held.get((dataset, month))))
                for f in [*files, *(Path(p.path) for p in prepared)]:
                    f.unlink(missing_ok=True)
        finally:
            # Also when a later window failed: what is in the Delta log is recorded.
            self._record()
        self._spooled.clear()
        self._whole.clear()
        self._prepared.clear()
        return results

    def compact(self, dataset: str, month: str) -> CommitResult | None:
        """Rewrite a month held in several parts as one file (same rows, same fingerprint); None if already one."""
        current = self.manifest.raw_partition(self.fleet_id, dataset, month)
        if current is None or len(current.files) < 2:
            return None
        try:
            return self._commit_month(dataset, month, [], compact=True, current=current)
        finally:
            self._record()

    def _record(self) -> None:
        """Record the windows published since the last record in the manifest, in one transaction.

        Each window's Delta commit is in the log before its record (the order the module says), so a
        crash in between leaves windows the rerun finds live in Delta and only records.
        """
        pending, self._unrecorded = self._unrecorded, []
        if not pending:
            return
        self.manifest.commit_raws([part for part, _append in pending])
        for part, append in pending:
            if append:
                self.appended.add((part.dataset, part.month))
            else:
                self.appended.discard((part.dataset, part.month))

    def _commit_snapshot(self, dataset: str, month: str, spooled: list[Path]) -> CommitResult:
        """The spool alone as the fleet's whole snapshot, filed under `month`; the fleet's snapshot
        of any earlier month goes in the same Delta commit and manifest transaction."""
        held = self.manifest.raw_partitions(self.fleet_id, dataset)
        current = max(held, key=lambda p: p.seq) if held else None
        out = self._dir / f"snapshot-{dataset}-{month}.parquet"
        with self._disk():
            if landing.fits(spooled, self.memory_limit):
                # In memory, as a month's merge is: DuckDB's fixed cost per query was most of this commit.
                digest = _write(landing.merged(dataset, [], spooled).to_batches(ROW_GROUP_ROWS), out,
                                DATASET_SCHEMAS[dataset])
            else:
                digest = _merge([], spooled, out, dataset, self._dir, self.memory_limit)
        if current is not None and len(held) == 1 and current.fingerprint == digest.fingerprint \
                and len(current.files) == 1:
            out.unlink(missing_ok=True)  # the same drivers as last time: the snapshot stands
            return CommitResult(dataset, current.month, CommitStatus.UNCHANGED, current.rows, current.seq,
                                current.fingerprint)
        if current is None and not digest.rows:
            out.unlink(missing_ok=True)
            return CommitResult(dataset, month, CommitStatus.UNCHANGED, 0, 0, digest.fingerprint)
        key = layout.raw_file(dataset, self.fleet_id, month, digest.name)
        size = out.stat().st_size
        self.store.put_file(key, out)
        out.unlink(missing_ok=True)
        part = RawPartition(self.fleet_id, dataset, month, (current.seq if current else 0) + 1, (key,), digest.rows,
                            size, digest.fingerprint, datetime.now(timezone.utc), self.pull_id)
        lake_for(self.store).commit_snapshot(layout.raw_table(dataset), DATASET_SCHEMAS[dataset], self.fleet_id, month,
                                             [DataFile(key, size, digest.rows)], self._metadata(part))
        self.manifest.commit_snapshot(part)
        return CommitResult(dataset, month, CommitStatus.COMMITTED, digest.rows, part.seq, part.fingerprint)

    def _metadata(self, part: RawPartition) -> dict[str, str]:
        return {WINDOW_KEY: json.dumps(part.to_json(), sort_keys=True), "fleetlake.fingerprint": part.fingerprint,
                "fleetlake.pull_id": self.pull_id or ""}

    def _commit_month(self, dataset: str, month: str, spooled: list[Path], compact: bool,
                      whole: bool = False, prepared: list[PreparedPart] | None = None,
                      current: RawPartition | None = None) -> CommitResult:
        """One window's commit; `current` is its committed version (None: it has none yet)."""
        base = Digest.parse(current.fingerprint) if current is not None else EMPTY
        prepared = prepared or []
        if dataset == "pings" and base is not None:
            landed = self._land_pings(month, current, base, spooled, compact, prepared)
            if landed is not None:
                return landed
        # The rare paths below read spooled Arrow IPC: prepared parts (Parquet) join the spool as that.
        spooled = [*spooled, *self._as_spool(prepared)]
        # The whole merge: other datasets, a correction of committed pings, an earlier fingerprint.
        out = self._dir / f"merged-{dataset}-{month}.parquet"
        # A REPLACED dataset's month pulled whole (replace_month): the spool alone is the month,
        # also when it is empty (merging the committed rows back in would keep a record the TSP
        # since edited or withdrew, e.g. an open duty status as cut at the earlier pull's now,
        # beside its final version). compact() declares nothing: it keeps them.
        if whole and current is None and not spooled:
            return CommitResult(dataset, month, CommitStatus.UNCHANGED, 0, 0, EMPTY.fingerprint)
        committed = [] if whole and dataset in REPLACED else self._local_copies(current)
        if landing.fits([*committed, *spooled], self.memory_limit):
            table = landing.merged(dataset, committed, spooled)
            digest = digest_table(table)
            if current is not None and current.fingerprint == digest.fingerprint and len(current.files) == 1:
                # unchanged (a refresh's re-pulled lookback): nothing to write
                return CommitResult(dataset, month, CommitStatus.UNCHANGED, current.rows, current.seq,
                                    digest.fingerprint)
            with self._disk():
                _write(table.to_batches(ROW_GROUP_ROWS), out, DATASET_SCHEMAS[dataset], digest=False)
        else:
            with self._disk():
                digest = _merge(committed, spooled, out, dataset, self._dir, self.memory_limit)
        fingerprint = digest.fingerprint
        if current is not None and current.fingerprint == fingerprint and len(current.files) == 1:
            out.unlink(missing_ok=True)
            return CommitResult(dataset, month, CommitStatus.UNCHANGED, current.rows, current.seq, fingerprint)
        key = layout.raw_file(dataset, self.fleet_id, month, digest.name)
        return self._publish(dataset, month, current, (key,), [(key, out, digest.rows)], digest, append=False)

    def _land_pings(self, month: str, current: RawPartition | None, base: Digest, spooled: list[Path],
                    compact: bool, prepared: list[PreparedPart]) -> CommitResult | None:
        """Steps 1-2 for pings: only the spool's new rows, as more parts; compacted if asked.

        The spool is deduplicated on its own, then joined with the month's committed rows on
        (vehicle_id, ts): rows equal to a committed one are dropped (a re-pulled lookback), and a
        row that differs from the committed one of its key (a TSP correction) needs the winner
        rule over both, so the month is merged whole instead (None). A part holds only keys the
        month does not, so readers of all parts still see one row per (vehicle, ts), and the
        month's digest is the sum of its parts'. Compaction sorts the parts into one file; it
        neither deduplicates nor hashes again (the parts are disjoint, their digest is known).

        Parts a pull worker prepared (`spool_batch(prepared=True)`: deduplicated, sorted, written,
        digested in the worker) are only checked here: when no two share a vehicle's time range and
        none shares a key with the committed month, they are published as the worker wrote them;
        one that shares keys is cut to its new rows first. Anything else (spooled IPC beside them,
        overlapping parts) joins the spool.
        """
        parts = self._local_copies(current)
        new: list[tuple[Path, Digest]] = []
        if prepared and not spooled and _disjoint(prepared):
            keys = landing.committed_keys(parts, [r for prep in prepared for r in prep.ranges])
            for prep in prepared:
                checked = self._checked(prep, parts, keys)
                if checked is None:
                    return None
                if checked[1].rows:
                    new.append(checked)
        elif spooled or prepared:
            spooled = [*spooled, *self._as_spool(prepared)]
            part = self._dir / f"part-pings-{month}.parquet"
            with self._disk():
                # A part that will be compacted is written fast; what stays as the month is written small.
                got = _append(parts, spooled, part, self._dir, self.memory_limit,
                              level=MONTH_ZSTD if compact and not parts else PART_ZSTD)
            if got is None:
                part.unlink(missing_ok=True)
                return None
            if got.rows:
                new.append((part, got))
            else:
                part.unlink(missing_ok=True)
        added = sum((d for _p, d in new), EMPTY)
        digest = base + added
        files = len(parts) + len(new)
        if current is not None and not new and (files == 1 or not compact):
            return CommitResult("pings", month, CommitStatus.UNCHANGED, current.rows, current.seq,
                                current.fingerprint)
        if current is None and not new:
            return CommitResult("pings", month, CommitStatus.UNCHANGED, 0, 0, digest.fingerprint)
        # One part alone is the month as it is, unless a worker wrote it uncompressed (`_prepare`).
        if compact and (files > 1 or any(_uncompressed(p) for p, _d in new)):
            out = self._dir / f"compacted-pings-{month}.parquet"
            if self.compactor is not None:
                self.compactor([*parts, *(p for p, _d in new)], out)
            else:
                compact_parts([*parts, *(p for p, _d in new)], out, self.memory_limit)
            for p, _d in new:
                p.unlink(missing_ok=True)
            key = layout.raw_file("pings", self.fleet_id, month, digest.name)
            return self._publish("pings", month, current, (key,), [(key, out, digest.rows)], digest, append=False)
        if current is None and len(new) == 1:
            key = layout.raw_file("pings", self.fleet_id, month, digest.name)
            return self._publish("pings", month, None, (key,), [(key, new[0][0], digest.rows)], digest, append=False)
        outs = [(layout.raw_file("pings", self.fleet_id, month, d.name), p, d.rows) for p, d in new]
        return self._publish("pings", month, current,
                             tuple(sorted({*(current.files if current else ()), *(k for k, _p, _r in outs)})),
                             outs, digest, append=True)

    def _checked(self, prep: PreparedPart, committed: list[Path], keys: pa.Table) -> tuple[Path, Digest] | None:
        """A prepared part as it may be published: itself when the committed month lacks its keys,
        else cut to the rows the month lacks (written here); None when one differs from the month's."""
        path, digest = Path(prep.path), prep.digest
        # Most parts are new weeks: the committed keys in their vehicles' time ranges (`keys`, read
        # once for all of a commit's parts) say so without reading the part.
        if not committed or not landing.holds_any(keys, prep.ranges):
            return path, digest
        fresh = landing.read_parts([path])
        rows = landing.new_rows(fresh, committed)
        if rows is None:
            return None
        if rows.num_rows == fresh.num_rows:
            return path, digest
        out = path.with_name(path.stem + "-new.parquet")
        with self._disk():
            cut = _write(rows.to_batches(ROW_GROUP_ROWS), out, PING_SCHEMA, level=PART_ZSTD) if rows.num_rows \
                else EMPTY
        return out, cut

    def _as_spool(self, prepared: list[PreparedPart]) -> list[Path]:
        """Prepared parts as Arrow IPC spool files (the merges that read the spool)."""
        out = []
        for p in prepared:
            target = self._dir / f"{Path(p.path).stem}-spool.arrow"
            with self._disk():
                feather.write_feather(pq.read_table(p.path), target, compression="uncompressed")
            out.append(target)
        return out

    def _publish(self, dataset: str, month: str, current: RawPartition | None, files: tuple[str, ...],
                 outs: list[tuple[str, Path, int]], digest: Digest, append: bool) -> CommitResult:
        """Steps 4-6: upload the new files (key, local path, rows), commit them to the Delta table,
        record the window in the manifest."""
        added = []
        for key, out, rows in outs:
            size = out.stat().st_size
            self.store.put_file(key, out)
            out.unlink(missing_ok=True)
            added.append(DataFile(key, size, rows))
        before = current.bytes if append and current is not None else 0
        part = RawPartition(self.fleet_id, dataset, month, (current.seq if current else 0) + 1, files, digest.rows,
                            before + sum(f.size for f in added), digest.fingerprint, datetime.now(timezone.utc),
                            self.pull_id)
        metadata = self._metadata(part)
        lake = lake_for(self.store)
        if append:
            lake.append_window(layout.raw_table(dataset), DATASET_SCHEMAS[dataset], self.fleet_id, month, added,
                               metadata)
        else:
            lake.commit_window(layout.raw_table(dataset), DATASET_SCHEMAS[dataset], self.fleet_id, month, added,
                               metadata)
        self._unrecorded.append((part, append))
        return CommitResult(dataset, month, CommitStatus.COMMITTED, digest.rows, part.seq, part.fingerprint)

    def _local_copies(self, current: RawPartition | None) -> list[Path]:
        if current is None:
            return []
        if isinstance(self.store, LocalStore):
            return [self.store.path(k) for k in current.files]
        paths = []
        for i, key in enumerate(current.files):
            p = self._dir / f"committed-{i}-{Path(key).name}"
            if not p.exists():  # parts are immutable: one download serves every later partial commit
                self.store.get_file(key, p)
            paths.append(p)
        return paths


@dataclass(frozen=True)
class PreparedPart:
    """A month's pings from one slice, deduplicated, sorted, written as a Parquet part and digested by
    the pull worker that pulled them (spool_batch with prepared=True), for the writer to check and publish."""
    month: str
    path: str
    fingerprint: str                          # partitions.digest: the part's rows
    ranges: tuple[tuple[str, int, int], ...]  # (vehicle_id, first ts, last ts) of its rows

    @property
    def digest(self) -> Digest:
        d = Digest.parse(self.fingerprint)
        assert d is not None
        return d


@dataclass(frozen=True)
class Spooled:
    """One batch validated and split by month into Arrow IPC spool files, for a writer to `adopt`.

    Local workers leave `files` (paths in the writer's spool dir); remote ones, which share no disk
    with the writer, send the same bytes as `blobs`.
    """
    files: tuple[tuple[str, str, str], ...] = ()   # (dataset, month, path)
    blobs: tuple[tuple[str, str, bytes], ...] = ()  # (dataset, month, Arrow IPC file)
    accepted: int = 0
    accepted_events: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    nulled: dict[str, int] = field(default_factory=dict)
    accepted_hos: dict[str, int] = field(default_factory=dict)  # drivers' and HOS datasets' rows, by dataset
    parts: tuple[PreparedPart, ...] = ()  # pings prepared as parts (local workers: files in the spool dir)

    @property
    def rows(self) -> int:
        return self.accepted + self.accepted_events

    @classmethod
    def join(cls, batches: Iterable[Spooled]) -> Spooled:
        """Several batches as one (a pull worker's task that spooled more than one dataset)."""
        quarantined: Counter[str] = Counter()
        nulled: Counter[str] = Counter()
        hos: Counter[str] = Counter()
        files: list[tuple[str, str, str]] = []
        blobs: list[tuple[str, str, bytes]] = []
        parts: list[PreparedPart] = []
        accepted = accepted_events = 0
        for b in batches:
            files += b.files
            blobs += b.blobs
            parts += b.parts
            accepted += b.accepted
            accepted_events += b.accepted_events
            quarantined.update(b.quarantined)
            nulled.update(b.nulled)
            hos.update(b.accepted_hos)
        return cls(tuple(files), tuple(blobs), accepted, accepted_events, dict(quarantined), dict(nulled),
                   dict(hos), tuple(parts))


def spool_batch(fleet_id: str, dataset: str, batch: pa.Table, now_ms: int, directory: Path | None,
                name: str, prepared: bool = False) -> Spooled:
    """Validate candidate rows of `dataset` (pings, events or one of the HOS datasets) and spool them
    by month (a pull worker's last step).

    With `directory` None the spool travels as bytes (`Spooled.blobs`). With `prepared` (and a
    directory), pings are spooled as the parts the commit publishes (`PreparedPart`): the worker,
    not the one committer, deduplicates, sorts, writes and digests them.
    """
    split = split_valid(batch, now_ms) if dataset == "pings" else split_valid_events(batch, now_ms) \
        if dataset == "events" else split_valid_hos(dataset, batch, now_ms)
    return spool_split(names.fleet_id(fleet_id), dataset, split, now_ms, directory, name,
                       prepared=prepared and dataset == "pings" and directory is not None)


def spool_split(fleet_id: str, dataset: str, split: Split, now_ms: int, directory: Path | None,
                name: str, prepared: bool = False) -> Spooled:
    valid, bad = split.valid, split.quarantine
    if valid.num_rows:
        fleets = pc.unique(valid["fleet_id"].combine_chunks().dictionary_decode()).to_pylist()
        if fleets != [fleet_id]:
            raise ValueError(f"writer for fleet {fleet_id} was given rows of {sorted(set(fleets))}")
    # HOS logs and assignments are stretches: they file under the month they start in.
    when = valid["ts" if "ts" in valid.column_names else "start_ts"]
    out: list[tuple[str, str, pa.Table]] = list(_by_month(dataset, valid, _months(when)))
    if bad.num_rows:
        # Quarantine rows file under the month of their timestamp when it is plausible,
        # else under the month they were received in.
        ts_ms = pc.cast(bad["ts"], pa.int64())
        plausible = pc.fill_null(pc.and_(pc.greater_equal(ts_ms, MIN_TS_MS),
                                         pc.less_equal(ts_ms, now_ms + FUTURE_SLACK_MS)), False)
        ts = np.where(np.asarray(plausible), np.asarray(pc.fill_null(ts_ms, 0)), now_ms)
        out.extend(_by_month("quarantine", bad, ts.astype("datetime64[ms]").astype("datetime64[M]")))
    files, blobs, parts = [], [], []
    for i, (ds_name, month, part) in enumerate(out):
        if prepared and ds_name == "pings" and directory is not None:
            parts.append(_prepare(part, month, directory / f"pings-{month}-{name}-{i:03d}.parquet"))
        elif directory is None:
            sink = pa.BufferOutputStream()
            feather.write_feather(part, sink, compression="uncompressed")
            blobs.append((ds_name, month, sink.getvalue().to_pybytes()))
        else:
            path = directory / f"{ds_name}-{month}-{name}-{i:03d}.arrow"
            with disk_full_as(WORK_SETTING, WORK_PART, directory):
                feather.write_feather(part, path, compression="uncompressed")  # a near-memcpy write
            files.append((ds_name, month, str(path)))
    return Spooled(tuple(files), tuple(blobs), valid.num_rows if dataset == "pings" else 0,
                   valid.num_rows if dataset == "events" else 0,
                   dict(Counter(bad["reason"].to_pylist())), dict(split.nulled),
                   {dataset: valid.num_rows} if dataset not in ("pings", "events") else {}, tuple(parts))


def _prepare(rows: pa.Table, month: str, path: Path) -> PreparedPart:
    """One month of a slice's valid pings as a part: one row per (vehicle_id, ts), sorted, digested.

    Written uncompressed: a pull compacts every month it pulled slices of when the month's group
    is done (ingest.pull.backfill), so a prepared part is read back once, soon, and a reader that
    sees it published in between reads valid Parquet. zstd-1 was a third of the worker's part
    (0.24 against 0.10 us/ping to write, reading back a little dearer too), for parts 1.7x smaller
    that live minutes; a pull stopped mid-month leaves them until its next run or `fleetlake gc`.
    """
    table = landing.sort_dedupe(landing.one_chunk(rows))
    with disk_full_as(WORK_SETTING, WORK_PART, path.parent):
        digest = _write(table.to_batches(ROW_GROUP_ROWS), path, PING_SCHEMA, compression="none")
    spans = pa.table({"v": pc.cast(table["vehicle_id"], pa.string()), "t": pc.cast(table["ts"], pa.int64())}) \
        .group_by("v").aggregate([("t", "min"), ("t", "max")])
    ranges = tuple(sorted(zip(spans["v"].to_pylist(), spans["t_min"].to_pylist(), spans["t_max"].to_pylist())))
    return PreparedPart(month, str(path), digest.fingerprint, ranges)


def _uncompressed(path: Path) -> bool:
    meta = pq.read_metadata(path)
    return meta.num_row_groups > 0 and meta.row_group(0).column(0).compression == "UNCOMPRESSED"


def _disjoint(parts: list[PreparedPart]) -> bool:
    """No two parts hold rows of one vehicle in overlapping time ranges: they share no (vehicle_id, ts)."""
    spans = sorted((v, lo, hi) for p in parts for v, lo, hi in p.ranges)
    return all(a[0] != b[0] or a[2] < b[1] for a, b in zip(spans, spans[1:]))


def _by_month(dataset: str, table: pa.Table, months: np.ndarray) -> list[tuple[str, str, pa.Table]]:
    if not table.num_rows:
        return []
    return [(dataset, names.month(str(m)), table.filter(pa.array(months == m))) for m in np.unique(months)]


_DBS = threading.local()


def _connect(tmp: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection (cursor) to this thread's merge database for the writer's memory limit.

    Opening a DuckDB database costs tens of ms, most of a small commit (a refresh with nothing
    new spent 40% of its CPU there): one database per thread and (work dir, memory limit) lives
    as long as the thread, and each merge takes a cursor, whose temp views and tables die with it.
    Per thread, not per process: merges of fleets committing at once must not share one
    database's transactions, and each keeps its own memory limit, as a database per merge did.
    The spill directory is the work dir's own, not a writer's (a writer's is removed when it closes).
    """
    key = (str(tmp.parent), _memory(memory_limit))
    dbs: dict[tuple[str, str], duckdb.DuckDBPyConnection] = getattr(_DBS, "dbs", None) or {}
    _DBS.dbs = dbs
    db = dbs.get(key)
    if db is None:
        db = duckdb.connect()
        db.execute(f"SET memory_limit = '{key[1]}'")
        spill = Path(tempfile.mkdtemp(prefix="fleetlake-duckdb-spill-", dir=tmp.parent))
        db.execute("SET temp_directory = ?", [str(spill)])
        db.execute("SET preserve_insertion_order = true")
        dbs[key] = db
    return db.cursor()


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a Parquet dictionary: ids, sources, kinds, reasons. Trying one on floats and
    times (nearly all distinct) cost more CPU than the zstd write itself and made the files larger."""
    return [f.name for f in schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]


def _write(reader: pa.RecordBatchReader | Iterable[pa.RecordBatch], out: Path, schema: pa.Schema,
           digest: bool = True, level: int | None = None, compression: str = "zstd") -> Digest:
    """Write sorted batches as one Parquet file (zstd unless told); the additive digest of what was written."""
    total = EMPTY
    with pq.ParquetWriter(out, schema, compression=compression,
                          compression_level=(level or MONTH_ZSTD) if compression == "zstd" else None,
                          use_dictionary=_dictionary_columns(schema), write_statistics=True) as w:
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
            if digest:
                total += digest_table(table)
            w.write_table(table, row_group_size=ROW_GROUP_ROWS)
    return total


def compact_parts(parts: list[Path], out: Path, memory_limit: str) -> None:
    """A month's disjoint sorted ping parts as one file `out` sorted by (vehicle_id, ts), zstd at the
    month's level: the same rows, so the month's digest (the sum of its parts') stands. Run by the
    writer, or by a pull worker process for it (ingest.pull.workers.CompactTask): it reads and
    writes local files only, and a worker killed meanwhile leaves at most a partial `out` that the
    next attempt overwrites and nothing commits."""
    with disk_full_as(WORK_SETTING, WORK_PART, out.parent):
        _sort_parts(parts, out, out.parent, memory_limit)


def _sort_parts(parts: list[Path], out: Path, tmp: Path, memory_limit: str) -> None:
    """Disjoint sorted ping parts as one file sorted by (vehicle_id, ts) (compaction)."""
    if landing.fits(parts, memory_limit):
        _write(landing.sorted_parts(landing.read_parts(parts)).to_batches(ROW_GROUP_ROWS), out, PING_SCHEMA,
               digest=False)
        return
    _sort_parts_in_duckdb(parts, out, tmp, memory_limit)


def _sort_parts_in_duckdb(parts: list[Path], out: Path, tmp: Path, memory_limit: str) -> None:
    con = _connect(tmp, memory_limit)
    try:
        con.read_parquet([str(p) for p in parts]).create_view("parts")
        _write(con.sql("SELECT * FROM parts ORDER BY vehicle_id, ts").to_arrow_reader(ROW_GROUP_ROWS), out,
               PING_SCHEMA, digest=False)
    finally:
        con.close()


def _merge(committed: list[Path], spooled: list[Path], out: Path, dataset: str, tmp: Path,
           memory_limit: str) -> Digest:
    """Deduplicate and sort committed Parquet plus spooled Arrow IPC into `out`; its content digest."""
    if not committed and not spooled:  # a month (or snapshot) replaced by nothing: an empty file of the schema
        schema = DATASET_SCHEMAS[dataset]
        return _write(pa.RecordBatchReader.from_batches(schema, iter(())), out, schema)
    con = _connect(tmp, memory_limit)
    try:
        if spooled:
            con.register("spool", ds.dataset([str(p) for p in spooled], format="ipc"))
        parts = []
        if committed:
            con.read_parquet([str(p) for p in committed]).create_view("committed")
            parts.append("SELECT * FROM committed")
        if spooled:
            parts.append("SELECT * FROM spool")
        con.execute("CREATE TEMP VIEW src AS " + " UNION ALL BY NAME ".join(parts))
        return _write(con.sql(_ORDER[dataset]).to_arrow_reader(ROW_GROUP_ROWS), out, DATASET_SCHEMAS[dataset])
    finally:
        con.close()


_SAME_PING = " AND ".join(f"c.{c} IS NOT DISTINCT FROM f.{c}" for c in
                          ("lat", "lon", "speed_mph", "heading_deg", "odometer_mi", "source"))


def _append(committed: list[Path], spooled: list[Path], out: Path, tmp: Path, memory_limit: str,
            level: int | None = None) -> Digest | None:
    """The spool's pings whose (vehicle_id, ts) the committed month lacks, sorted, into `out`.

    None when a spooled row differs from the committed row of its key (the caller merges whole).
    Only the committed rows in the spool's time range are joined (row groups outside it are
    skipped on their statistics), so the cost follows the new rows, not the month. In memory
    (partitions.landing) when that fits the memory limit, else in DuckDB, which spills.
    """
    if landing.fits([*spooled, *committed], memory_limit):
        rows = landing.new_rows(landing.sort_dedupe(landing.read_spool(spooled)), committed)
        if rows is None or not rows.num_rows:
            return None if rows is None else EMPTY
        return _write(rows.to_batches(ROW_GROUP_ROWS), out, PING_SCHEMA, level=level)
    return _append_in_duckdb(committed, spooled, out, tmp, memory_limit, level)


def _append_in_duckdb(committed: list[Path], spooled: list[Path], out: Path, tmp: Path, memory_limit: str,
                      level: int | None = None) -> Digest | None:
    con = _connect(tmp, memory_limit)
    try:
        con.register("spool", ds.dataset([str(p) for p in spooled], format="ipc"))
        con.execute("CREATE TEMP VIEW src AS SELECT * FROM spool")
        con.execute(f"CREATE TEMP TABLE fresh AS {_ORDER['pings']}")
        lo, hi = con.execute("SELECT min(ts), max(ts) FROM fresh").fetchall()[0]
        if lo is None:
            return EMPTY
        if not committed:
            return _write(con.sql("SELECT * FROM fresh ORDER BY vehicle_id, ts").to_arrow_reader(ROW_GROUP_ROWS),
                          out, PING_SCHEMA, level=level)
        con.read_parquet([str(p) for p in committed]).create_view("committed")
        con.execute("CREATE TEMP TABLE hits AS SELECT f.vehicle_id, f.ts, " + _SAME_PING + " AS same "
                    "FROM fresh f JOIN committed c ON c.vehicle_id = f.vehicle_id AND c.ts = f.ts "
                    "WHERE c.ts BETWEEN ? AND ?", [lo, hi])
        differ, = con.execute("SELECT count(*) FILTER (WHERE NOT same) FROM hits").fetchall()[0]
        if differ:
            return None
        reader = con.sql("SELECT * FROM fresh ANTI JOIN hits USING (vehicle_id, ts) "
                         "ORDER BY vehicle_id, ts").to_arrow_reader(ROW_GROUP_ROWS)
        return _write(reader, out, PING_SCHEMA, level=level)
    finally:
        con.close()


def _months(ts: pa.ChunkedArray) -> np.ndarray:
    """UTC calendar month of each timestamp (numpy: ~30x faster than strftime)."""
    return np.asarray(pc.cast(ts, pa.int64())).astype("datetime64[ms]").astype("datetime64[M]")


def _memory(limit: str) -> str:
    if not limit.replace(".", "").rstrip("KMGTBkmgtib").isdigit():
        raise ValueError(f"invalid memory limit {limit!r}")
    return limit
