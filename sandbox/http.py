"""HTTP plumbing shared by the fake TSP servers: auth, rate limits, faults, fast JSON."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from datetime import date, datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from sandbox.faults import FaultPlan, chance
from sandbox.tokens import OAuthError
from sandbox.world import SandboxWorld

_encoder = msgspec.json.Encoder()


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def json_bytes(obj: Any) -> bytes:
    return _encoder.encode(obj)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def rfc3339_ms(ts_ms: np.ndarray) -> list[str]:
    """'2025-03-01T12:00:00.000Z' for each epoch-millisecond timestamp."""
    return [s + "Z" for s in np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms").tolist()]


def parse_time(value: str | None, name: str) -> int:
    """RFC 3339 timestamp to epoch ms; a clear 400 when missing or malformed."""
    if not value:
        raise BadRequest(f"{name} is required")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} is not an RFC 3339 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def parse_date(value: str | None, name: str) -> date:
    """A `YYYY-MM-DD` query parameter (Motive's start_date and end_date)."""
    if not value:
        raise BadRequest(f"{name} is required")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date YYYY-MM-DD") from None


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid pagination cursor") from None
    parts = raw.split(":")
    if len(parts) != n:
        raise BadRequest("invalid pagination cursor")
    return parts


def query_hash(request: Request, *exclude: str) -> str:
    items = sorted((k, v) for k, v in request.query_params.multi_items() if k not in exclude)
    return hashlib.blake2b(repr((request.url.path, items)).encode(), digest_size=6).hexdigest()


class DroppedOnPurpose(ConnectionAbortedError):
    """Raised to make the ASGI server drop a connection mid-body; not an error of the sandbox."""


class QuietDrops(logging.Filter):
    """Keeps the server's error log free of the tracebacks of deliberate drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedOnPurpose) and not isinstance(
            getattr(exc, "__context__", None), DroppedOnPurpose)


class TrickleBody(Response):
    """Sends the headers, then a space a second while `hanging()` says so, then the body."""

    def __init__(self, body: bytes, hanging: Callable[[], bool]) -> None:
        super().__init__(body, media_type="application/json")
        self.hanging = hanging
        # Sent chunked: a Content-Length would promise the body's size, not the whitespace before it.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        while self.hanging():
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class DropMidBody(Response):
    """Sends the headers and half the body, then drops the connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise DroppedOnPurpose("sandbox fault: connection dropped mid-body")


Handler = Callable[[Request, str], Awaitable[Response]]


class Gate:
    """Authentication, rate limiting and fault injection in front of a TSP's resource routes."""

    def __init__(self, world: SandboxWorld, tsp: str, allow_api_key: bool,
                 omit_retry_after: float = 0.0) -> None:
        self.world = world
        self.tsp = tsp
        self.allow_api_key = allow_api_key
        self.omit_retry_after = omit_retry_after

    def wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            world, tsp = self.world, self.tsp
            world.count(tsp, "requests")
            try:
                fleet, credential = self._authenticate(request)
            except OAuthError as e:
                return JSONResponse({"error": e.error, "message": e.description}, status_code=e.status,
                                    headers={"WWW-Authenticate": f'Bearer error="{e.error}"'})
            wait = world.limiters[tsp].acquire(credential)
            plan = world.faults[tsp]
            key = f"{request.url.path}?{request.url.query}"
            attempt = world.attempt(tsp, key)
            if wait > 0:
                world.count(tsp, "throttled")
                return self._too_many(wait, key, attempt, plan)
            fault = await self._fault(plan, key, attempt)
            if fault is not None:
                world.count(tsp, "faults")
                return fault
            try:
                response = await handler(request, fleet)
            except BadRequest as e:
                return JSONResponse({"message": e.message}, status_code=e.status)
            if plan.drop_mid_body and chance(plan.seed, "drop", key, attempt) < plan.drop_mid_body:
                world.count(tsp, "faults")
                return DropMidBody(bytes(response.body))
            if plan.hang and chance(plan.seed, "hang", key, attempt) < plan.hang:
                world.count(tsp, "faults")
                return TrickleBody(bytes(response.body), lambda: world.faults[tsp].hang > 0)
            return response

        return endpoint

    def _authenticate(self, request: Request) -> tuple[str, str]:
        authority = self.world.authorities[self.tsp]
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
            return authority.fleet_for_bearer(token), token
        key = request.headers.get("x-api-key")
        if self.allow_api_key and key:
            return authority.fleet_for_api_key(key), key
        raise OAuthError("invalid_token", "missing credentials", 401)

    def _too_many(self, wait: float, key: str, attempt: int, plan: FaultPlan) -> Response:
        headers = {}
        if not (self.omit_retry_after and chance(plan.seed, "no-retry-after", key, attempt) < self.omit_retry_after):
            headers["Retry-After"] = f"{max(wait, 0.001):.3f}"
        return JSONResponse({"message": "Rate limit exceeded. Please retry later.", "requestId": key[-8:]},
                            status_code=429, headers=headers)

    async def _fault(self, plan: FaultPlan, key: str, attempt: int) -> Response | None:
        if plan.slow and chance(plan.seed, "slow", key, attempt) < plan.slow:
            await asyncio.sleep(plan.slow_seconds)
        if plan.storm_429 and chance(plan.seed, "429", key, attempt) < plan.storm_429:
            wait = 0.05 + chance(plan.seed, "429-wait", key, attempt) * 0.5
            return self._too_many(wait, key, attempt, plan)
        if plan.error_5xx and chance(plan.seed, "5xx", key, attempt) < plan.error_5xx:
            status = (500, 502, 503, 504)[int(chance(plan.seed, "5xx-code", key, attempt) * 4)]
            if chance(plan.seed, "5xx-text", key, attempt) < plan.error_5xx_text:
                return Response("upstream connect error or disconnect/reset before headers",
                                status_code=status, media_type="text/plain")
            return JSONResponse({"message": "Internal server error", "requestId": key[-8:]}, status_code=status)
        return None


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the OAuth token endpoints), last value wins."""

    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequest("form body is not UTF-8") from None
    return dict(pairs)
