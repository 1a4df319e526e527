"""HTTP for connectors: one httpx.Client each, explicit timeouts, one place that classifies
responses, and a bounded tenacity retry that honours Retry-After.

Retried: 429, 5xx and transport errors (connect, read, dropped connections). Not retried:
other 4xx (our request is wrong) and 401 (the auth flow already refreshed and replayed once).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from common.errors import AuthError, TspRequestError, TspUnavailable
from connectors.redact import redact_url
from connectors.throttle import Throttle

log = logging.getLogger("fleetlake.http")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_total_s: float = 300.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0  # a Retry-After beyond this is clamped, not obeyed blindly


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 60.0
    write_s: float = 30.0
    pool_s: float = 30.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def retry_after_seconds(value: str | None, max_s: float, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (fractional allowed) or an HTTP
    date. Negative or unparseable values give None; large ones are clamped to max_s."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        # A date already past means "now".
        return min(max(0.0, when.timestamp() - (time.time() if now is None else now)), max_s)
    if seconds != seconds or seconds < 0:  # NaN or negative: not a valid delay, use our backoff
        return None
    return min(seconds, max_s)


# Told (tsp, status code or 0 for a transport error) of every TSP response, e.g. the daemon's
# metrics. Passed to each client, not registered globally: connectors do not know who listens.
ResponseHook = Callable[[str, int], None]


def classify(response: httpx.Response) -> str:
    """ok | retry | auth | client_error, the one place that decides what a status means."""
    s = response.status_code
    if s < 300:
        return "ok"
    if s == 429 or s >= 500:
        return "retry"
    if s in (401, 403):
        return "auth"
    return "client_error"


class TspHttp:
    def __init__(self, tsp: str, base_url: str, auth: httpx.Auth | None, throttle: Throttle | None = None,
                 policy: RetryPolicy = RetryPolicy(), timeouts: Timeouts = Timeouts(),
                 transport: httpx.BaseTransport | None = None, on_response: ResponseHook | None = None) -> None:
        self.tsp = tsp
        self.on_response = on_response
        self.policy = policy
        self.throttle = throttle
        self.client = httpx.Client(base_url=base_url, auth=auth, timeout=timeouts.httpx(), transport=transport,
                                   headers={"Accept": "application/json", "User-Agent": "fleetlake/0.1"})
        self.requests = 0
        self.throttled = 0

    def close(self) -> None:
        self.client.close()

    def _notify(self, status: int) -> None:
        if self.on_response is None:
            return
        try:
            self.on_response(self.tsp, status)
        except Exception:  # noqa: BLE001 - a metrics bug must not break a pull
            log.exception("response hook failed")

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """A successful response, or TspUnavailable / TspRequestError / AuthError."""
        retrying = Retrying(stop=stop_after_attempt(self.policy.max_attempts) | stop_after_delay(self.policy.max_total_s),
                            wait=self._wait, retry=retry_if_exception_type(_Retryable), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(path, params)
        except _Retryable as e:
            raise TspUnavailable(self.tsp, f"GET {path} gave up after {retrying.statistics.get('attempt_number', '?')} "
                                           f"attempts: {e.reason}") from None
        raise AssertionError("unreachable")

    def _once(self, path: str, params: dict[str, Any] | None) -> httpx.Response:
        if self.throttle:
            self.throttle.acquire()
        self.requests += 1
        try:
            response = self.client.get(path, params=params)
        except httpx.TransportError as e:
            # Timeouts, refused or dropped connections, bodies cut short: the next attempt may work.
            self._notify(0)
            raise _Retryable(type(e).__name__, None) from None
        self._notify(response.status_code)
        kind = classify(response)
        if kind == "ok":
            if self.throttle:
                self.throttle.succeeded()
            return response
        url = redact_url(str(response.request.url))
        if kind == "retry":
            wait = retry_after_seconds(response.headers.get("retry-after"), self.policy.max_retry_after_s)
            if response.status_code == 429:
                self.throttled += 1
                if self.throttle:
                    self.throttle.throttled(wait)
            log.info("%s %s answered %s, retrying", self.tsp, url, response.status_code)
            raise _Retryable(f"HTTP {response.status_code}", wait)
        if kind == "auth":
            raise AuthError(self.tsp, f"GET {path} was refused ({response.status_code}) after a token refresh")
        raise TspRequestError(self.tsp, f"GET {url} answered {response.status_code}: {_short_reason(response)}",
                              response.status_code)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after_s is not None:
            return exc.retry_after_s
        # Exponential backoff with full jitter: spreads many fleets' retries apart.
        cap = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** (state.attempt_number - 1))
        return random.uniform(0, cap)


def _short_reason(response: httpx.Response) -> str:
    """A short, safe description of an error body: its message field, never the whole body."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "error"
    if isinstance(body, dict):
        for k in ("message", "error_message", "error_description", "error"):
            if isinstance(body.get(k), str):
                return body[k][:200]
    return response.reason_phrase or "error"
