"""Reading the manifest: every query the rest of fleetlake asks, typed, and none that writes.

`ManifestReader` is what a read view (`Manifest.reading()`) hands out: it has no method that
writes, so mypy refuses a write through it (tests/test_manifest_reader.py checks that), and its
connection is its own. The writer (`partitions.manifest.writer.Manifest`) extends it. Queries
that serve the surfaces (the console's book and its ready months, a fleet's work log, a window's
runs) and the planner's set-based query live here too, so no raw SQL leaves this package.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from partitions.manifest.records import (
    _FLEET_COLS,
    _RAW_COLS,
    _RUN_COLS,
    Fleet,
    FleetLanding,
    FlowRun,
    Offboarding,
    RawPartition,
    RunAttempt,
    RunLine,
    WindowTask,
    _db_time,
    _fleet,
    _flow_run,
    _one,
    _raw,
    _utc,
)

# The windows of the active flow versions (`active_flows`, registered per query) that have inputs,
# with their input fingerprint: of one fleet ($1) or all (NULL), of months before $2 or all (NULL).
_INPUTS_CTE = """
inputs AS (
    SELECT a.flow, a.version, a.code_fp, r.fleet_id, r.month,
           string_agg(r.dataset || ':' || r.fingerprint, ',' ORDER BY r.dataset) AS input_fp,
           list(r.dataset ORDER BY r.dataset) AS datasets,
           list(r.files ORDER BY r.dataset) AS files
    FROM raw_partitions r
    JOIN active_flows a ON r.dataset = a.dataset
    WHERE ($1::VARCHAR IS NULL OR r.fleet_id = $1::VARCHAR) AND ($2::VARCHAR IS NULL OR r.month < $2::VARCHAR)
    GROUP BY a.flow, a.version, a.code_fp, r.fleet_id, r.month
)"""

# Whether window `i` has a current run: succeeded on the same code and inputs, and not set aside by
# a re-run request (superseded_runs).
_CURRENT = """EXISTS (
    SELECT 1 FROM flow_runs f
    WHERE f.status = 'succeeded' AND f.flow = i.flow AND f.version = i.version AND f.code_fp = i.code_fp
      AND f.fleet_id = i.fleet_id AND f.month = i.month AND f.input_fp = i.input_fp
      AND NOT EXISTS (SELECT 1 FROM superseded_runs s WHERE s.run_id = f.run_id))"""

_PLAN_SQL = f"""
WITH {_INPUTS_CTE}
SELECT i.flow, i.version, i.code_fp, i.fleet_id, i.month, i.input_fp, i.datasets, i.files
FROM inputs i
WHERE NOT {_CURRENT}
ORDER BY i.fleet_id, i.month, i.flow, i.version
"""

# The book's ready months (ingest.reads.readiness says what ready means): pulled months before the
# open month ($2) with no window waiting for a run and, when they hold pings, a succeeded run of
# every active flow version ($3 of them). Set-based over every fleet: a fleets page over the book
# costs one query, never a plan per fleet. Its windows are the plan's (`inputs`, the same input
# fingerprint), but the fingerprint is built once per fleet-month and set of input datasets, not
# once per flow version: most flows read the same datasets, and the ordered string_agg is the
# query's cost.
_BOOK_READY_SQL = f"""
WITH input_sets AS (
    SELECT flow, version, code_fp, string_agg(dataset, ',' ORDER BY dataset) AS datasets
    FROM active_flows GROUP BY flow, version, code_fp
),
set_members AS (SELECT DISTINCT a.dataset, s.datasets FROM active_flows a JOIN input_sets s USING (flow, version, code_fp)),
fingerprints AS (
    SELECT m.datasets, r.fleet_id, r.month,
           string_agg(r.dataset || ':' || r.fingerprint, ',' ORDER BY r.dataset) AS input_fp
    FROM raw_partitions r JOIN set_members m ON m.dataset = r.dataset
    WHERE ($1::VARCHAR IS NULL OR r.fleet_id = $1::VARCHAR) AND r.month < $2::VARCHAR
    GROUP BY m.datasets, r.fleet_id, r.month
),
inputs AS (
    SELECT s.flow, s.version, s.code_fp, f.fleet_id, f.month, f.input_fp
    FROM input_sets s JOIN fingerprints f USING (datasets)
),
waiting AS (SELECT DISTINCT i.fleet_id, i.month FROM inputs i WHERE NOT {_CURRENT}),
computed AS (
    SELECT r.fleet_id, r.month
    FROM (SELECT DISTINCT fleet_id, month, flow, version FROM flow_runs
          WHERE status = 'succeeded' AND month < $2::VARCHAR) r
    JOIN (SELECT DISTINCT flow, version FROM active_flows) a USING (flow, version)
    GROUP BY r.fleet_id, r.month HAVING count(*) = $3
)
SELECT m.fleet_id, list(m.month ORDER BY m.month)
FROM fleet_months m
WHERE m.month < $2::VARCHAR
  AND NOT EXISTS (SELECT 1 FROM waiting w WHERE w.fleet_id = m.fleet_id AND w.month = m.month)
  AND ($3 = 0
       OR NOT EXISTS (SELECT 1 FROM raw_partitions p
                      WHERE p.fleet_id = m.fleet_id AND p.month = m.month AND p.dataset = 'pings')
       OR EXISTS (SELECT 1 FROM computed c WHERE c.fleet_id = m.fleet_id AND c.month = m.month))
GROUP BY m.fleet_id
"""

_BOOK_SQL = """
WITH raw AS (
    SELECT fleet_id,
           count(*) FILTER (WHERE dataset = 'pings') AS months,
           coalesce(sum(rows) FILTER (WHERE dataset = 'pings'), 0) AS pings,
           coalesce(sum(rows) FILTER (WHERE dataset = 'events'), 0) AS events,
           max(committed_at) AS last_landed
    FROM raw_partitions GROUP BY fleet_id
)
SELECT f.fleet_id, f.tsp, f.status, f.error, f.history_start, f.updated_at,
       coalesce(r.months, 0), coalesce(r.pings, 0), coalesce(r.events, 0), r.last_landed
FROM fleets f LEFT JOIN raw r USING (fleet_id)
ORDER BY f.fleet_id
"""

# (flow, version, code fingerprint, input dataset): one row per input of each active flow version
ActiveInput = tuple[str, int, str, str]


class ManifestReader:
    """Typed reads of the manifest on one connection (shared with the writer, or a read view's own)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path, lock: threading.RLock | None = None) -> None:
        self._conn = conn
        self.path = path
        # One DuckDB connection is not safe for concurrent use; pull threads share the writer's.
        self._lock = lock or threading.RLock()

    def _all(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params or []).fetchall()

    # ------------------------------------------------------------------ fleets
    def fleet(self, fleet_id: str) -> Fleet | None:
        rows = self._all(f"SELECT {_FLEET_COLS} FROM fleets "
                         "WHERE fleet_id = ?", [fleet_id])
        return _fleet(rows[0]) if rows else None

    def fleets(self) -> list[Fleet]:
        rows = self._all(f"SELECT {_FLEET_COLS} FROM fleets "
                         "ORDER BY fleet_id")
        return [_fleet(r) for r in rows]

    def fleet_landings(self) -> list[FleetLanding]:
        """Every fleet with its landed months, pings, events and last landing: one query for the whole book."""
        return [FleetLanding(r[0], r[1], str(r[2]), r[3], _utc(r[4]), _utc(r[5]), int(r[6]), int(r[7]), int(r[8]),
                             _utc(r[9])) for r in self._all(_BOOK_SQL)]

    # ------------------------------------------------------------------ raw partitions
    def raw_partition(self, fleet_id: str, dataset: str, month: str) -> RawPartition | None:
        rows = self._all(f"SELECT {_RAW_COLS} FROM raw_partitions "
                         "WHERE fleet_id = ? AND dataset = ? AND month = ?", [fleet_id, dataset, month])
        return _raw(rows[0]) if rows else None

    def raw_partitions(self, fleet_id: str | None = None, dataset: str | None = None) -> list[RawPartition]:
        rows = self._all(
            f"SELECT {_RAW_COLS} FROM raw_partitions WHERE (? IS NULL OR fleet_id = ?) "
            "AND (? IS NULL OR dataset = ?) ORDER BY fleet_id, dataset, month",
            [fleet_id, fleet_id, dataset, dataset])
        return [_raw(r) for r in rows]

    def raw_windows(self, fleet_id: str, months: list[str]) -> dict[tuple[str, str], RawPartition]:
        """(dataset, month) -> the fleet's window, for every dataset of `months`: one query where a
        writer's commit asked one per window (each lookup costs DuckDB about 0.5 ms of CPU)."""
        rows = self._all(f"SELECT {_RAW_COLS} FROM raw_partitions "
                         "WHERE fleet_id = ? AND list_contains(?::VARCHAR[], month)", [fleet_id, sorted(set(months))])
        return {(p.dataset, p.month): p for p in map(_raw, rows)}

    # ------------------------------------------------------------------ credentials (encrypted blobs)
    def load_credentials(self, fleet_id: str) -> bytes | None:
        rows = self._all("SELECT sealed FROM credentials WHERE fleet_id = ?", [fleet_id])
        return bytes(rows[0][0]) if rows else None

    def all_credentials(self) -> dict[str, bytes]:
        """Every fleet's sealed blob (the start-up check for blobs sealed the old way reads them all)."""
        return {r[0]: bytes(r[1]) for r in self._all("SELECT fleet_id, sealed FROM credentials ORDER BY fleet_id")}

    # ------------------------------------------------------------------ off-boarding
    def fleet_tables(self) -> list[str]:
        """Every table with a fleet_id column, from the catalog (a table added later is not missed)."""
        rows = self._all("SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'main' "
                         "AND column_name = 'fleet_id' AND table_name <> 'offboardings' ORDER BY table_name")
        return [r[0] for r in rows]

    def fleet_rows(self, fleet_id: str) -> dict[str, int]:
        """How many rows of `fleet_id` each table holds."""
        with self._lock:
            return {t: int(_one(self._conn.execute(f'SELECT count(*) FROM "{t}" WHERE fleet_id = ?', [fleet_id])) or 0)
                    for t in self.fleet_tables()}

    def offboardings(self) -> list[Offboarding]:
        rows = self._all("SELECT fleet_id, tsp, actor, done_at, removed FROM offboardings ORDER BY done_at, fleet_id")
        return [Offboarding(r[0], r[1], r[2], _utc(r[3]), json.loads(r[4]) if isinstance(r[4], str) else r[4])  # type: ignore[arg-type]
                for r in rows]

    # ------------------------------------------------------------------ flows and their runs
    def flow_schema(self, flow: str, version: int) -> str | None:
        rows = self._all("SELECT schema_fp FROM flow_schemas WHERE flow = ? AND version = ?", [flow, version])
        return rows[0][0] if rows else None

    def latest_runs(self, fleet_id: str | None = None, succeeded_only: bool = False) -> list[FlowRun]:
        """The newest run of each (flow, version, fleet, month) window, optionally of one fleet only."""
        rows = self._all(f"""
            SELECT {_RUN_COLS} FROM flow_runs
            WHERE (? IS NULL OR fleet_id = ?) AND (NOT ? OR status = 'succeeded')
            QUALIFY row_number() OVER (PARTITION BY flow, version, fleet_id, month
                                       ORDER BY started_at DESC, run_id DESC) = 1
            ORDER BY fleet_id, month, flow, version""", [fleet_id, fleet_id, succeeded_only])
        return [_flow_run(r) for r in rows]

    def current_windows(self, flows: list[tuple[str, int, str]]) -> list[FlowRun]:
        """The newest succeeded run of each window (by key) of `flows` (flow, version, code fingerprint),
        on that code and not set aside by a re-run request: what a flow on flows reads, and whether
        its own windows are current (ingest/engine/derived.py)."""
        if not flows:
            return []
        keys = [f"{f}@{v}@{c}" for f, v, c in flows]
        rows = self._all(f"""
            SELECT {_RUN_COLS} FROM flow_runs f
            WHERE f.status = 'succeeded' AND list_contains(?::VARCHAR[], f.flow || '@' || f.version || '@' || f.code_fp)
              AND NOT EXISTS (SELECT 1 FROM superseded_runs s WHERE s.run_id = f.run_id)
            QUALIFY row_number() OVER (PARTITION BY flow, version, fleet_id, window_key
                                       ORDER BY started_at DESC, run_id DESC) = 1
            ORDER BY fleet_id, window_key, flow, version""", [keys])
        return [_flow_run(r) for r in rows]

    def runs_finished(self) -> int:
        """How many runs have finished (succeeded or failed): a feature pass's progress."""
        return int(self._all("SELECT count(finished_at) FROM flow_runs")[0][0])

    def runs(self, flow: str | None = None) -> list[FlowRun]:
        rows = self._all(f"SELECT {_RUN_COLS} FROM flow_runs WHERE (? IS NULL OR flow = ?) "
                         "ORDER BY started_at, run_id", [flow, flow])
        return [_flow_run(r) for r in rows]

    def recomputed_windows(self, fleet_id: str) -> set[tuple[str, int, str]]:
        """(flow, version, month) windows that succeeded on more than one set of inputs: late or new data
        changed the month after it was first computed."""
        rows = self._all("""
            SELECT flow, version, month FROM flow_runs WHERE fleet_id = ? AND status = 'succeeded'
            GROUP BY flow, version, month HAVING count(DISTINCT input_fp) > 1""", [fleet_id])
        return {(r[0], int(r[1]), r[2]) for r in rows}

    def recent_runs(self, fleet_id: str, limit: int = 30) -> list[RunLine]:
        """A fleet's newest runs, newest first."""
        rows = self._all("""
            SELECT flow, version, month, status, started_at, finished_at, error FROM flow_runs
            WHERE fleet_id = ? ORDER BY started_at DESC, run_id DESC LIMIT ?""", [fleet_id, limit])
        return [RunLine(r[0], int(r[1]), r[2], str(r[3]), _utc(r[4]), _utc(r[5]), r[6]) for r in rows]

    def window_runs(self, fleet_id: str, flow: str, version: int, month: str) -> list[RunAttempt]:
        """Every run of one feature window, first attempt first, each with the re-run request that set it
        aside (if one did): what a grid cell opens."""
        rows = self._all(f"""
            SELECT {", ".join("f." + c for c in _RUN_COLS.split(", "))}, s.superseded_at, s.requested_by
            FROM flow_runs f LEFT JOIN superseded_runs s USING (run_id)
            WHERE f.fleet_id = ? AND f.flow = ? AND f.version = ? AND f.month = ?
            ORDER BY f.started_at, f.run_id""", [fleet_id, flow, version, month])
        return [RunAttempt(_flow_run(r[:14]), i + 1, _utc(r[14]), r[15]) for i, r in enumerate(rows)]

    def _with_active(self, active: list[ActiveInput], sql: str, params: list[Any]) -> list[tuple]:
        table = pa.table({"flow": [a[0] for a in active], "version": pa.array([a[1] for a in active], pa.int32()),
                          "code_fp": [a[2] for a in active], "dataset": [a[3] for a in active]})
        with self._lock:
            self._conn.register("active_flows", table)
            try:
                return self._conn.execute(sql, params).fetchall()
            finally:
                self._conn.unregister("active_flows")

    def pending_windows(self, active: list[ActiveInput], fleet_id: str | None = None) -> list[WindowTask]:
        """Every window of the `active` flow versions that needs a run, or one fleet's only.

        One set-based query: a window needs a run when no succeeded run has its (flow, version, code,
        fleet, month, input fingerprint), or when a re-run request set that run aside. It reads the
        manifest alone, never a data file; one fleet's filter applies before the grouping, so it costs
        that fleet's rows, not the book's.
        """
        rows = self._with_active(active, _PLAN_SQL, [fleet_id, None])
        return [WindowTask(r[0], int(r[1]), r[2], r[3], r[4], r[5],
                           tuple((d, tuple(files)) for d, files in zip(r[6], r[7]))) for r in rows]

    def ready_months(self, active: list[ActiveInput], open_month: str) -> dict[str, tuple[str, ...]]:
        """fleet -> its ready months before `open_month` (ingest.reads.readiness), for every fleet at once:
        one set-based query with the planner's notion of a current run, never a plan per fleet."""
        versions = len({(a[0], a[1]) for a in active})
        rows = self._with_active(active, _BOOK_READY_SQL, [None, open_month, versions])
        return {r[0]: tuple(r[1]) for r in rows}

    # ------------------------------------------------------------------ pull checkpoints, months, readiness
    def completed_slices(self, fleet_id: str, stream: str) -> set[str]:
        rows = self._all("SELECT slice_key FROM pull_checkpoints WHERE fleet_id = ? AND stream = ?",
                         [fleet_id, stream])
        return {r[0] for r in rows}

    def lookback_pages(self, fleet_id: str, stream: str) -> dict[str, tuple[str, int]]:
        """slice key -> (its pages' digests and rows as ingest.pull.lookback.Seen.text, rows) for the stream's lookback slices."""
        rows = self._all("SELECT slice_key, digest, rows FROM lookback_pages WHERE fleet_id = ? AND stream = ?",
                         [fleet_id, stream])
        return {r[0]: (r[1], int(r[2])) for r in rows}

    def checkpoint_rate(self, fleet_id: str, since: datetime) -> tuple[int, float] | None:
        """(pings, seconds) checkpointed for a fleet's GPS from `since` to its last checkpoint, or None."""
        rows = self._all("SELECT sum(rows), min(completed_at), max(completed_at) FROM pull_checkpoints "
                         "WHERE fleet_id = ? AND completed_at >= ? AND dataset = 'pings'",
                         [fleet_id, _db_time(since)])
        if not rows or rows[0][0] is None or rows[0][2] <= rows[0][1]:
            return None
        return int(rows[0][0]), (rows[0][2] - rows[0][1]).total_seconds()

    def pulled_months(self, fleet_id: str) -> dict[str, datetime]:
        rows = self._all("SELECT month, pulled_at FROM fleet_months WHERE fleet_id = ? ORDER BY month", [fleet_id])
        return {r[0]: _utc(r[1]) for r in rows}  # type: ignore[misc]  # pulled_at is NOT NULL

    def readiness_fired(self, fleet_id: str) -> dict[int, tuple[str, str, datetime, bool]]:
        """threshold -> (first month, last month, fired at, delivered)."""
        rows = self._all("SELECT threshold, first_month, last_month, fired_at, delivered FROM readiness_fired "
                         "WHERE fleet_id = ? ORDER BY threshold", [fleet_id])
        return {int(r[0]): (r[1], r[2], _utc(r[3]), bool(r[4])) for r in rows}  # type: ignore[misc]
