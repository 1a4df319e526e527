"""The JSON API's bodies as typed models: what every answer is, and what /openapi.json says it is.

Each handler builds its answer through one of these models (`answer`), so a body that does not
fit its schema fails in the daemon (a test finds it), never in a client; and the OpenAPI document
(ingest/surfaces/openapi.py) takes its schemas from the very same models, so a client generator
gets usable types. The models mirror the read models' `to_json` (ingest/reads/views.py,
ingest/reads/readiness.py, ingest/fleets/offboarding.py, ingest/runtime/workqueue.py): fields a
record leaves out stay out (`exclude_unset`), so the wire format is unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.states import FleetStatus, Tsp, WindowState, WorkKind


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Error(_Model):
    """Every 4xx/5xx answer: a line for a person, and a stable code where a client must tell cases apart."""
    error: str = Field(description="what was wrong, without internal paths, store URLs or secrets")
    code: str | None = Field(None, description="e.g. unknown_fleet, unknown_tsp")


class Health(_Model):
    status: str = Field(description="always ok: the process answers")


class Ready(_Model):
    ready: bool
    problems: list[str] = Field(description="each failing dependency, named: manifest, store, disk, scheduler")


class Fleet(_Model):
    fleet_id: str
    tsp: Tsp
    status: FleetStatus
    consent_at: datetime | None
    history_start: datetime | None = Field(description="the first month of its history (UTC)")
    error: str | None = Field(description="why its last pull failed, or why it is revoked")
    stuck: str | None = Field(None, description="present only while its running pull is stuck: why")


class Month(_Model):
    raw: dict[str, int] = Field(description="rows landed per raw dataset (pings, events, ...)")
    features: dict[str, WindowState] = Field(description="flow@version -> the state of its window")


class FleetStatusOut(Fleet):
    months: dict[str, Month] = Field(description="YYYY-MM -> the month's raw rows and feature windows")


class FleetFeaturesOut(_Model):
    fleet_id: str
    months: dict[str, dict[str, list[dict[str, Any]]]] = Field(
        description="YYYY-MM -> flow@version -> the fleet roll-up rows (feature name -> value; null with a "
                    "*_reason column where a figure cannot be measured)")


class Threshold(_Model):
    months: int
    reached: bool
    span: list[str] | None = Field(description="[first, last] month of the span that reached it")
    fired_at: datetime | None
    delivered: bool | None


class ReadinessOut(_Model):
    fleet_id: str
    status: FleetStatus
    months_total: int
    months_done: int
    months_ready: list[str]
    span: list[str] | None
    months_to_pull: list[str]
    pings: int
    pings_per_min: float | None
    eta_s: float | None
    thresholds: list[Threshold]
    pulling: str | None
    notes: dict[str, str] = Field(description="why a figure above is null")


class Queued(_Model):
    fleet_id: str | None = None
    work: WorkKind
    queued: bool = Field(description="false: the same work was queued or running already")
    note: str | None = None


class ConsentLink(_Model):
    tsp: Tsp
    fleet_id: str
    relink: bool
    consent_url: str


class StorePurge(_Model):
    table_files: dict[str, int]
    bytes: int
    control_keys: list[str]
    other_keys: int


class Offboarded(_Model):
    fleet_id: str
    tsp: Tsp
    actor: str
    at: datetime
    revocation: str
    credentials: str
    customer_action: str | None
    store: StorePurge
    manifest_rows: dict[str, int]
    audit_key: str


class WorkState(_Model):
    queued: list[str]
    running: str | None
    running_all: list[str]
    last: dict[str, str] = Field(description="work key -> how it last ended")


class QuoteFigure(_Model):
    name: str
    label: str
    unit: str
    value: float | str | None = Field(description="null with `reason` when the window cannot measure it")
    months: int = Field(description="months of the quote window the figure covers")
    reason: str | None
    percentile: float | None = Field(description="0-100: the share of the book's other fleets with a complete "
                                                 "quote window whose figure is lower")
    percentile_reason: str | None
    fleets_compared: int | None


class StateShare(_Model):
    state: str
    share: float


class QuoteOut(_Model):
    fleet_id: str
    window: str = Field(description="q<N>:<last month>: the last N complete months (FLEETLAKE_QUOTE_MONTHS)")
    first_month: str
    last_month: str
    window_months: int
    complete_window: bool = Field(description="every month of the window has miles")
    state_shares: list[StateShare] = Field(description="share of the window's miles by US state, largest first")
    figures: list[QuoteFigure]
    computed_at: str


def answer(model: type[_Model], data: Any) -> dict[str, Any]:
    """`data` (a read model's to_json) checked against `model`, as JSON: the body every handler sends."""
    return model.model_validate(data).model_dump(mode="json", exclude_unset=True)
