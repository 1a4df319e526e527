"""The JSON API's OpenAPI 3.1 document, generated from its operations and the typed models its
answers are built with (ingest/surfaces/api_models.py): one source for the wire and the spec.

Each operation has an operationId (a client generator names its methods after them), its
parameters, and a schema for every status it answers, errors included (`Error`). A test checks
that the app's routes and these operations are the same set, and schemathesis checks every body
against its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common.states import Tsp
from ingest.surfaces import api_models as m

FLEET_ID = {"name": "fleet_id", "in": "path", "required": True, "description": "the fleet's id",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"}}
MONTH = {"name": "month", "in": "query", "required": False, "description": "one month, YYYY-MM",
         "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    answers: dict[int, type[BaseModel] | None]  # status -> body model (None: not JSON, e.g. HTML)
    parameters: tuple[dict[str, Any], ...] = ()
    authed: bool = True
    media: dict[int, str] = field(default_factory=dict)  # status -> media type other than JSON


# Every operation's own answers; the authed ones also answer 400 (a bad name), 401 and 503 (storage).
OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "getHealth", "liveness: the process answers", {200: m.Health}, authed=False),
    Operation("get", "/readyz", "getReadiness", "readiness: manifest, store, local disk and scheduler, each "
              "probe within FLEETLAKE_READYZ_TIMEOUT_S; 503 names each failing dependency",
              {200: m.Ready, 503: m.Ready}, authed=False),
    Operation("get", "/fleets", "listFleets", "every fleet and its state", {200: m.Fleet}),
    Operation("delete", "/fleets/{fleet_id}", "offboardFleet",
              "off-board a fleet: revoke its TSP grant, destroy its credentials (its data key), delete every object "
              "and record of it, keep an audit record (409 while work on it is queued or running)",
              {200: m.Offboarded, 404: m.Error, 409: m.Error, 502: m.Error},
              (FLEET_ID, {"name": "operator", "in": "query", "required": False,
                          "description": "who off-boards it, for the audit record",
                          "schema": {"type": "string", "maxLength": 80}})),
    Operation("get", "/fleets/{fleet_id}/status", "getFleetStatus",
              "the fleet's month x (raw datasets, feature windows) grid", {200: m.FleetStatusOut, 404: m.Error},
              (FLEET_ID,)),
    Operation("get", "/fleets/{fleet_id}/readiness", "getFleetReadiness",
              "how close a fleet is to a quote: months with features and their span, months to pull, pings per "
              "minute, ETA of the full history, readiness thresholds reached", {200: m.ReadinessOut, 404: m.Error},
              (FLEET_ID,)),
    Operation("get", "/fleets/{fleet_id}/features", "getFleetFeatures",
              "the fleet roll-up feature rows per month and flow version", {200: m.FleetFeaturesOut, 404: m.Error},
              (FLEET_ID, MONTH)),
    Operation("get", "/fleets/{fleet_id}/quote", "getFleetQuote",
              "the fleet's quote summary over the last N complete months (miles, states, radius class, harsh events "
              "and speeding per 1,000 mi, night share, active vehicles), each figure with the months it covers and "
              "its percentile in the book; 404 before the first quote window is computed",
              {200: m.QuoteOut, 404: m.Error}, (FLEET_ID,)),
    Operation("post", "/fleets/{fleet_id}/backfill", "queueBackfill",
              "queue a backfill: pulls every month not yet landed, then its features",
              {202: m.Queued, 404: m.Error}, (FLEET_ID,)),
    Operation("post", "/fleets/{fleet_id}/refresh", "queueFleetRefresh", "queue a refresh of one fleet",
              {202: m.Queued, 404: m.Error}, (FLEET_ID,)),
    Operation("post", "/refresh", "queueRefresh", "queue a refresh of every fleet", {202: m.Queued}),
    Operation("post", "/connect/{tsp}", "getConsentLink",
              "a consent URL for a new fleet (relink=true: replace a connected fleet's tokens)",
              {200: m.ConsentLink, 404: m.Error, 409: m.Error},
              ({"name": "tsp", "in": "path", "required": True, "description": "the fleet's telematics provider",
                "schema": {"type": "string", "enum": [t.value for t in Tsp]}},
               {**FLEET_ID, "in": "query"},
               {"name": "relink", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["true", "false"]}})),
    Operation("get", "/work", "getWork", "queued and running work, and how each work item last ended",
              {200: m.WorkState}),
)
# /fleets answers a list of Fleet: said in the document below.
LISTS = {("get", "/fleets")}


def document(extra: tuple[Operation, ...] = ()) -> dict[str, Any]:
    """The OpenAPI document: every operation, its parameters and the schema of each answer."""
    ops = (*OPERATIONS, *extra)
    models = sorted({model for op in ops for model in op.answers.values() if model is not None} | {m.Error},
                    key=lambda x: x.__name__)
    _, defs = models_json_schema([(model, "serialization") for model in models],
                                 ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        answers: dict[int, type[BaseModel] | None] = dict(op.answers)
        if op.authed:
            answers = {400: m.Error, 401: m.Error, 503: m.Error, **answers}
        responses: dict[str, Any] = {}
        for status, model in sorted(answers.items()):
            if model is None:
                responses[str(status)] = {"description": "not JSON", "content": {op.media.get(status, "text/html"): {}}}
                continue
            ref: dict[str, Any] = {"$ref": f"#/components/schemas/{model.__name__}"}
            schema = {"type": "array", "items": ref} if status < 300 and (op.method, op.path) in LISTS else ref
            responses[str(status)] = {"description": (model.__doc__ or model.__name__).strip().splitlines()[0],
                                      "content": {"application/json": {"schema": schema}}}
        responses["default"] = {"description": "an unexpected error, answered without internals",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        paths.setdefault(op.path, {})[op.method] = {
            "operationId": op.operation_id, "summary": op.summary, "parameters": list(op.parameters),
            "responses": responses, **({} if op.authed else {"security": []})}
    return {
        "openapi": "3.1.0",
        "info": {"title": "fleetlake", "version": "1",
                 "description": "Trigger and watch fleetlake's ingestion and feature work."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": defs.get("$defs", {})},
        "security": [{"bearer": []}],
        "paths": paths,
    }
