"""The manifest's records: one frozen dataclass per kind of row, and the row converters.

Times: TIMESTAMP columns hold naive UTC; records carry timezone-aware UTC (`_utc`, `_db_time`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb

from common import names
from common.states import FleetStatus, RunStatus


@dataclass(frozen=True)
class RawPartition:
    fleet_id: str
    dataset: str
    month: str
    seq: int
    files: tuple[str, ...]
    rows: int
    bytes: int
    fingerprint: str
    committed_at: datetime
    pull_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "dataset": self.dataset, "month": self.month, "seq": self.seq,
                "files": list(self.files), "rows": self.rows, "bytes": self.bytes, "fingerprint": self.fingerprint,
                "committed_at": self.committed_at.isoformat(), "pull_id": self.pull_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RawPartition:
        return cls(names.fleet_id(d["fleet_id"]), names.dataset(d["dataset"]), names.month(d["month"]),
                   int(d["seq"]), tuple(str(f) for f in d["files"]), int(d["rows"]), int(d["bytes"]),
                   str(d["fingerprint"]), datetime.fromisoformat(d["committed_at"]), d.get("pull_id"))


@dataclass(frozen=True)
class Fleet:
    fleet_id: str
    tsp: str
    status: FleetStatus
    consent_at: datetime | None
    history_start: datetime | None
    error: str | None


@dataclass(frozen=True)
class FlowRun:
    """One run of a feature window: (flow, version, code, fleet, month, inputs) -> outputs."""
    run_id: str
    flow: str
    version: int
    code_fp: str
    fleet_id: str
    month: str
    input_fp: str
    status: RunStatus
    outputs: tuple[str, ...]
    stats: dict[str, Any] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    # The window's key (ingest/engine/windows.py): the month itself for a month window; e.g.
    # "q12:2025-11" for a quote window (`month` is then the window's last month, its partition).
    window_key: str = ""

    def __post_init__(self) -> None:
        if not self.window_key:
            object.__setattr__(self, "window_key", self.month)

    @property
    def window(self) -> tuple[str, int, str]:
        """(flow, version, month): the feature window of one fleet this run computed."""
        return self.flow, self.version, self.month

    @property
    def rows(self) -> int:
        return int((self.stats or {}).get("rows") or 0)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else 0.0

    def commit_record(self, complete: bool, committed_at: datetime) -> dict[str, Any]:
        """The run as the Delta commit of its output records it (`manifest rebuild` reads it back)."""
        return {"run_id": self.run_id, "flow": self.flow, "version": self.version, "code_fp": self.code_fp,
                "fleet_id": self.fleet_id, "month": self.month, "input_fp": self.input_fp,
                "outputs": list(self.outputs), "rows": self.rows, "complete_month": complete,
                "committed_at": committed_at.isoformat(), "window_key": self.window_key}

    @classmethod
    def from_commit_record(cls, d: dict[str, Any]) -> FlowRun:
        """A succeeded run from its commit record; KeyError/ValueError/TypeError when fields are missing."""
        stamp = d.get("committed_at")
        at = datetime.fromisoformat(stamp) if stamp else datetime.now(timezone.utc)
        return cls(str(d["run_id"]), str(d["flow"]), int(d["version"]), str(d["code_fp"]), str(d["fleet_id"]),
                   str(d["month"]), str(d["input_fp"]), RunStatus.SUCCEEDED, tuple(str(o) for o in d["outputs"]),
                   {"rows": d.get("rows"), "rebuilt": True}, None, at, at, str(d.get("window_key") or d["month"]))


@dataclass(frozen=True)
class Offboarding:
    """The audit record of an off-boarded fleet: who, when, and what was removed (counts, keys; no data)."""
    fleet_id: str
    tsp: str
    actor: str
    at: datetime
    removed: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "tsp": self.tsp, "actor": self.actor, "at": self.at.isoformat(),
                "removed": self.removed}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Offboarding:
        return cls(names.fleet_id(d["fleet_id"]), str(d["tsp"]), str(d["actor"]), datetime.fromisoformat(d["at"]),
                   dict(d["removed"]))


@dataclass(frozen=True)
class WindowTask:
    """A feature window that needs a run (the planner's answer): its flow version, code, fleet-month,
    the fingerprint of its inputs, and the committed input files per dataset."""
    flow: str
    version: int
    code_fp: str
    fleet_id: str
    month: str
    input_fp: str
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # (dataset or "<flow>@<version>", committed files)
    window_key: str = ""  # as FlowRun.window_key: the month itself for a month window

    def __post_init__(self) -> None:
        if not self.window_key:
            object.__setattr__(self, "window_key", self.month)


@dataclass(frozen=True)
class FleetLanding:
    """A fleet and what of it has landed: what the console's book lists, from one query."""
    fleet_id: str
    tsp: str
    status: str  # a string: the book shows any state the manifest holds (a newer daemon may know more)
    error: str | None
    history_start: datetime | None
    updated_at: datetime | None
    months: int                # months of pings landed
    pings: int
    events: int
    last_landed: datetime | None


@dataclass(frozen=True)
class RunLine:
    """A feature run of a fleet, as its work log shows it."""
    flow: str
    version: int
    month: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class RunAttempt:
    """One run of a feature window, numbered among the window's runs (1: its first), and the re-run
    request that set it aside, if one did: what a console grid cell opens."""
    run: FlowRun
    attempt: int
    superseded_at: datetime | None = None
    superseded_by: str | None = None


_RUN_COLS = ("run_id, flow, version, code_fp, fleet_id, month, input_fp, status, outputs, stats, error, started_at, "
             "finished_at, window_key")
_RAW_COLS = "fleet_id, dataset, month, seq, files, rows, bytes, fingerprint, committed_at, pull_id"
_FLEET_COLS = "fleet_id, tsp, status, consent_at, history_start, error"


def _now() -> datetime:
    """Now as naive UTC, the form TIMESTAMP columns hold."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _one(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The single value a statement answers (a count, a max)."""
    row = cursor.fetchone()
    return row[0] if row else None


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt)


def _db_time(dt: datetime | None) -> datetime | None:
    """Naive UTC for a TIMESTAMP column."""
    return None if dt is None else dt.astimezone(timezone.utc).replace(tzinfo=None)


def _fleet(row: tuple) -> Fleet:
    return Fleet(row[0], row[1], FleetStatus(row[2]), _utc(row[3]), _utc(row[4]), row[5])


def _run_row(run: FlowRun) -> list[Any]:
    return [run.run_id, run.flow, run.version, run.code_fp, run.fleet_id, run.month, run.input_fp,
            RunStatus(run.status).value, list(run.outputs), json.dumps(run.stats) if run.stats is not None else None,
            run.error, _db_time(run.started_at), _db_time(run.finished_at), run.window_key]


def _flow_run(r: tuple) -> FlowRun:
    stats = json.loads(r[9]) if isinstance(r[9], str) else r[9]
    return FlowRun(r[0], r[1], int(r[2]), r[3], r[4], r[5], r[6], RunStatus(r[7]), tuple(r[8] or ()), stats, r[10],
                   _utc(r[11]), _utc(r[12]), r[13] or r[5])  # type: ignore[arg-type]  # started_at is NOT NULL


def _raw(row: tuple) -> RawPartition:
    return RawPartition(row[0], row[1], row[2], int(row[3]), tuple(row[4]), int(row[5]), int(row[6]), row[7],
                        _utc(row[8]), row[9])  # type: ignore[arg-type]  # committed_at is NOT NULL
