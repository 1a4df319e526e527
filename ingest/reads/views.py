"""What the service reports, as typed values: the same objects whether the CLI asks the manifest
directly or the daemon's API (which serialises them with `to_json` and is read back with
`from_json`), so no caller parses a status out of a JSON dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.states import FleetStatus, WindowState
from ingest.reads.readiness import BookReadiness
from partitions.manifest import Fleet, FleetLanding


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class FleetView:
    fleet_id: str
    tsp: str
    status: FleetStatus
    consent_at: datetime | None
    history_start: datetime | None
    error: str | None
    stuck: str | None = None  # why its running pull is stuck (the daemon's watch, ingest/stuck.py)

    @classmethod
    def of(cls, f: Fleet, stuck: str | None = None) -> FleetView:
        return cls(f.fleet_id, f.tsp, f.status, f.consent_at, f.history_start, f.error, stuck)

    def to_json(self) -> dict[str, Any]:
        d = {"fleet_id": self.fleet_id, "tsp": self.tsp, "status": self.status.value,
             "consent_at": _iso(self.consent_at), "history_start": _iso(self.history_start), "error": self.error}
        # Only while stuck: a moment's state, not a record (status --json stays the same across a rebuild).
        return {**d, "stuck": self.stuck} if self.stuck else d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FleetView:
        return cls(d["fleet_id"], d["tsp"], FleetStatus(d["status"]), _dt(d.get("consent_at")),
                   _dt(d.get("history_start")), d.get("error"), d.get("stuck"))


@dataclass(frozen=True)
class MonthRow:
    """One month of a fleet: raw rows per dataset and the state of each active feature window."""
    raw: dict[str, int] = field(default_factory=dict)
    features: dict[str, WindowState] = field(default_factory=dict)  # "flow@version" -> state

    def to_json(self) -> dict[str, Any]:
        return {"raw": dict(self.raw), "features": {k: v.value for k, v in self.features.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MonthRow:
        return cls(dict(d.get("raw", {})), {k: WindowState(v) for k, v in d.get("features", {}).items()})


@dataclass(frozen=True)
class FleetGrid:
    """A fleet and its month x (raw datasets, feature windows) grid."""
    fleet: FleetView
    months: dict[str, MonthRow]

    def to_json(self) -> dict[str, Any]:
        return {**self.fleet.to_json(), "months": {m: row.to_json() for m, row in sorted(self.months.items())}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FleetGrid:
        return cls(FleetView.from_json(d), {m: MonthRow.from_json(r) for m, r in d.get("months", {}).items()})


@dataclass(frozen=True)
class FleetFeatures:
    """A fleet's roll-up feature rows: month -> "flow@version" -> rows (plain JSON values)."""
    fleet_id: str
    months: dict[str, dict[str, list[dict[str, Any]]]]

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "months": self.months}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FleetFeatures:
        return cls(d["fleet_id"], d.get("months", {}))


@dataclass(frozen=True)
class BookLine:
    """A fleet of the book: what of it has landed, and how close it is to a quote."""
    landing: FleetLanding
    readiness: BookReadiness
