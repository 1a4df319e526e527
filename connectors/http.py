"""HTTP for connectors: one httpx.Client each, explicit timeouts, one place that classifies
responses, and a bounded retry (attempts, total time) that honours Retry-After.

Retried: 429, 5xx and transport errors (connect, read, dropped connections). Not retried:
other 4xx (our request is wrong) and 401 (the auth flow already refreshed and replayed once).

Limits (`Limits`), so that one hostile or broken server costs one fleet its pull and nothing else:

- a wall-clock deadline per request: httpx's read timeout restarts with every byte, so a server
  sending a byte every few seconds would never time out; the body is read chunk by chunk and the
  clock checked between chunks (and no single read may wait past the deadline either);
- a cap on body bytes after decompression, read as a stream: gzip and deflate are decoded here
  with a bounded output per step, so a 1 MB gzip bomb or a 200 MB page fails at the cap having
  held at most the cap in memory, never the whole thing;
- the stop flag, checked before each request and while waiting to retry, so a pull leaves between
  pages when the daemon shuts down.

Neither breach is retried: a retry would only spend the same time or memory again.

On the lean transport (connectors/transport.py) with an auth that only sets headers
(`HeaderAuth`, as the bearer auths are) or none, a request skips httpx's objects: the target is
built as one string (the query encoded as httpx encodes it), the auth flow runs on one stand-in
request for the API's base URL, the transport is called with header pairs, and one httpx.Response
is built, from the body already read and decoded. httpx's Request, URL parse, client send (auth
driver, cookie jar, hooks) and its second Response cost about 250 µs of a TSP page's 360, more
than the socket reads. Cookies are not kept on that path: the TSPs' APIs take bearer tokens.
Everything else (the limits, retries, classification) is the same code on both paths.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import re
import ssl
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable
from urllib.parse import quote_plus

import httpx

from common.errors import (
    AuthError,
    DeadlineExceeded,
    MalformedResponse,
    PullInterrupted,
    ResponseTooLarge,
    TspRequestError,
    TspUnavailable,
)
from connectors.redact import redact_url
from connectors.throttle import Throttle
from connectors.transport import LeanTransport

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


@dataclass(frozen=True)
class Limits:
    """What one request, and one pull slice, may cost."""
    request_deadline_s: float = 120.0     # wall clock for one request, headers to last byte
    max_response_bytes: int = 64 << 20    # body bytes after decompression
    min_ping_interval_s: float = 1.0      # the finest GPS resolution a TSP serves: bounds a slice's pages
    page_slack: int = 16                  # pages beyond that: short pages, empty boundary pages

    def max_pages(self, span_ms: int, page_size: int) -> int:
        """The most pages a slice of `span_ms` can need at `page_size` points a page: one point
        every `min_ping_interval_s` per vehicle, plus slack. More is a server that never ends."""
        points = max(0, span_ms) / 1000 / self.min_ping_interval_s
        return int(points // max(1, page_size)) + 1 + self.page_slack


class HeaderAuth(httpx.Auth):
    """An auth whose flow only sets request headers, whatever the URL (bearer tokens): TspHttp's
    lean path runs its flow on a stand-in request for the API's base URL instead of building a
    request per page. Any other httpx.Auth goes through httpx's client as usual."""


# A path httpx's URL parse leaves as it is (unreserved and sub-delimiter characters): sent as given.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_ENCODING_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    # A slice's pages repeat every parameter but the cursor: quoting each once is a tenth of a request.
    return quote_plus(text)


def query_string(params: dict[str, Any]) -> str:
    """`params` as httpx encodes them (httpx.QueryParams: true/false for booleans, "" for None, a
    list as repeated keys, then urllib's urlencode: quote_plus of each key and value), without
    building its objects."""
    out = []
    for k, v in params.items():
        for x in v if isinstance(v, list | tuple) else (v,):
            text = "true" if x is True else "false" if x is False else "" if x is None else str(x)
            out.append(f"{_quoted(str(k))}={_quoted(text)}")
    return "&".join(out)


# Decoders we can bound; anything else is not asked for (Accept-Encoding below).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_CHUNK = 64 << 10


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


class ResponseClass(StrEnum):
    """What a TSP response means for the caller."""
    OK = "ok"                      # 2xx: read the body
    RETRY = "retry"                # 429 or 5xx: wait (Retry-After) and ask again, within the policy
    AUTH = "auth"                  # 401/403: the token or the grant
    CLIENT_ERROR = "client_error"  # any other 4xx: our request is wrong, retrying cannot fix it


def classify(response: httpx.Response) -> ResponseClass:
    """The one place that decides what a status means."""
    s = response.status_code
    if s < 300:
        return ResponseClass.OK
    if s == 429 or s >= 500:
        return ResponseClass.RETRY
    if s in (401, 403):
        return ResponseClass.AUTH
    return ResponseClass.CLIENT_ERROR


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's roots, or SSL_CERT_FILE/SSL_CERT_DIR), built once.

    httpx builds one for every Client, even for plain http, and loading the roots costs about
    10 ms of CPU: with a client per pull, per OAuth exchange and per clock read, that was a tenth
    of the daemon's CPU refreshing many small fleets (bench/bench_scale.py under py-spy).
    """
    return httpx.create_ssl_context()


class TspHttp:
    def __init__(self, tsp: str, base_url: str, auth: httpx.Auth | None, throttle: Throttle | None = None,
                 policy: RetryPolicy = RetryPolicy(), timeouts: Timeouts = Timeouts(),
                 transport: httpx.BaseTransport | None = None, on_response: ResponseHook | None = None,
                 limits: Limits = Limits(), stop: threading.Event | None = None) -> None:
        self.tsp = tsp
        self.on_response = on_response
        self.policy = policy
        self.throttle = throttle
        self.limits = limits
        self.stop = stop  # set: no new request starts (PullInterrupted), retry waits end early
        self.timeouts = timeouts
        # Only encodings `_read_body` decodes with a bounded output (httpx would add br/zstd when installed).
        self.client = httpx.Client(base_url=base_url, auth=auth, timeout=timeouts.httpx(), transport=transport,
                                   verify=tls_context(),
                                   headers={"Accept": "application/json", "User-Agent": "fleetlake/0.1",
                                            "Accept-Encoding": "gzip, deflate"})
        self._prefix = str(self.client.base_url).rstrip("/") + "/"  # relative paths join after it
        base = self.client.base_url
        self.auth = auth
        # The lean path (module docstring): our transport, and an auth that only sets headers.
        self._lean = transport if isinstance(transport, LeanTransport) and \
            (auth is None or isinstance(auth, HeaderAuth)) else None
        self._key = (base.scheme, base.host, base.port or (443 if base.scheme == "https" else 80))
        self._target_prefix = base.raw_path.decode("ascii").rstrip("/") + "/"
        netloc = base.host if base.port is None else f"{base.host}:{base.port}"
        self._headers = [("Host", netloc), *((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.client.headers.raw)]
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
        """A successful response, or TspUnavailable / TspRequestError / AuthError.

        The retry loop is written out rather than run by tenacity: its machinery cost a fifth of
        the client's CPU per page, and nearly every page needs one attempt.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(path, params)
            except _Retryable as e:
                if attempt >= self.policy.max_attempts or time.monotonic() - started >= self.policy.max_total_s:
                    raise TspUnavailable(self.tsp, f"GET {path} gave up after {attempt} attempts: {e.reason}") from None
                self._sleep(self._delay(attempt, e))

    def _sleep(self, seconds: float) -> None:
        # A retry may wait up to a clamped Retry-After: the stop flag ends the wait, the next
        # attempt then raises PullInterrupted before sending anything.
        if self.stop is not None:
            self.stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _once(self, path: str, params: dict[str, Any] | None) -> httpx.Response:
        if self.stop is not None and self.stop.is_set():
            raise PullInterrupted(f"{self.tsp}: stopping before GET {path}")
        if self.throttle:
            self.throttle.acquire()
        self.requests += 1
        deadline = time.monotonic() + self.limits.request_deadline_s
        # No single read may wait past the deadline; the loop in _read_body checks it between reads.
        t = self.timeouts
        timeout = httpx.Timeout(connect=min(t.connect_s, self.limits.request_deadline_s),
                                read=min(t.read_s, self.limits.request_deadline_s), write=t.write_s, pool=t.pool_s)
        query = query_string(params) if params else ""
        try:
            if self._lean is not None:
                response = self._lean_get(self._lean, path, query, timeout, deadline)
            else:
                request = self._request(path, query, timeout)
                streamed = self.client.send(request, stream=True)
                try:
                    body = self._read_body(streamed.iter_raw(), streamed.headers.get("content-encoding"),
                                           streamed.status_code, path, deadline)
                finally:
                    streamed.close()
                # The body is decoded already: the response handed on carries it without the encoding.
                headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _ENCODING_HEADERS]
                response = httpx.Response(streamed.status_code, headers=headers, content=body, request=request)
        except httpx.TransportError as e:
            # Timeouts, refused or dropped connections, bodies cut short: the next attempt may work.
            self._notify(0)
            raise _Retryable(type(e).__name__, None) from None
        self._notify(response.status_code)
        kind = classify(response)
        if kind is ResponseClass.OK:
            if self.throttle:
                self.throttle.succeeded()
            return response
        url = redact_url(self._prefix + path.lstrip("/") + ("?" + query if query else ""))
        if kind is ResponseClass.RETRY:
            wait = retry_after_seconds(response.headers.get("retry-after"), self.policy.max_retry_after_s)
            if response.status_code == 429:
                self.throttled += 1
                if self.throttle:
                    self.throttle.throttled(wait)
            log.info("%s %s answered %s, retrying", self.tsp, url, response.status_code)
            raise _Retryable(f"HTTP {response.status_code}", wait)
        if kind is ResponseClass.AUTH:
            raise AuthError(self.tsp, f"GET {path} was refused ({response.status_code}) after a token refresh")
        raise TspRequestError(self.tsp, f"GET {url} answered {response.status_code}: {_short_reason(response)}",
                              response.status_code)

    def _request(self, path: str, query: str, timeout: httpx.Timeout) -> httpx.Request:
        """What `client.build_request` builds, with one URL parse instead of three (it merges the
        base URL, then the params, each a parse): a tenth of the client's CPU per page."""
        url = httpx.URL(self._prefix + path.lstrip("/") + ("?" + query if query else ""))
        request = httpx.Request("GET", url, headers=self.client.headers, extensions={"timeout": timeout.as_dict()})
        if self.client.cookies:
            self.client.cookies.set_cookie_header(request)
        return request

    def _lean_get(self, transport: LeanTransport, path: str, query: str, timeout: httpx.Timeout,
                  deadline: float) -> httpx.Response:
        """One GET on the lean path (module docstring), the auth's replays included: the response
        with its body read (within the limits) and decoded."""
        rel = path.lstrip("/")
        if not _PLAIN_PATH.fullmatch(rel):  # characters httpx would quote: its parse says how
            rel = httpx.URL(self._prefix + rel).raw_path.decode("ascii")[len(self._target_prefix):]
        target = self._target_prefix + rel + ("?" + query if query else "")
        timeouts = timeout.as_dict()
        flow = None
        request = None
        if self.auth is not None:
            request = httpx.Request("GET", self.client.base_url)  # a stand-in: HeaderAuth sets headers only
            flow = self.auth.sync_auth_flow(request)
            request = next(flow)
        while True:
            headers = self._headers if request is None else \
                [*self._headers, *((k, v) for k, v in request.headers.items() if k != "host")]
            status, got, body = transport.exchange(self._key, "GET", target, headers, timeouts)
            try:
                encoding = next((v for k, v in got if k.lower() == "content-encoding"), None)
                content = self._read_body(body, encoding, status, path, deadline)
            finally:
                body.close()
            response = httpx.Response(status, headers=[(k, v) for k, v in got if k.lower() not in _ENCODING_HEADERS],
                                      content=content)
            if flow is None:
                return response
            try:
                request = flow.send(response)  # the auth asks again (a 401 replayed with a fresh token)
            except StopIteration:
                return response

    def _read_body(self, chunks: Iterable[bytes], content_encoding: str | None, status: int, path: str,
                   deadline: float) -> bytes:
        """The decoded body, read as a stream within the deadline and the byte cap."""
        cap = self.limits.max_response_bytes
        encoding = (content_encoding or "identity").strip().lower()
        decoder = None
        if encoding in _WBITS:
            decoder = zlib.decompressobj(_WBITS[encoding])
        elif encoding not in ("", "identity"):
            raise TspRequestError(self.tsp, f"GET {path}: unrequested content encoding {encoding[:20]!r}", status)
        parts: list[bytes] = []
        size = 0

        def keep(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > cap:
                raise ResponseTooLarge(self.tsp, f"GET {path}: response body exceeds {cap:,} bytes "
                                                 f"{'after decompression ' if decoder else ''}(limit "
                                                 "FLEETLAKE_MAX_RESPONSE_MB)")
            parts.append(data)

        for raw in chunks:  # as the socket gives it: no buffering up to a size
            if self.stop is not None and self.stop.is_set():
                raise PullInterrupted(f"{self.tsp}: stopping during GET {path}")
            if time.monotonic() > deadline:
                raise DeadlineExceeded(self.tsp, f"GET {path}: no complete answer within "
                                                 f"{self.limits.request_deadline_s:g} s (limit "
                                                 "FLEETLAKE_REQUEST_DEADLINE_S); the server sends too slowly")
            if decoder is None:
                keep(raw)
                continue
            # Bounded output per step: a bomb never expands past the cap (plus one step) in memory.
            try:
                keep(decoder.decompress(raw, _CHUNK))
                while decoder.unconsumed_tail:
                    keep(decoder.decompress(decoder.unconsumed_tail, _CHUNK))
            except zlib.error:
                raise MalformedResponse(self.tsp, f"GET {path}: the {encoding} body does not decode") from None
        if decoder is not None:
            keep(decoder.flush())
        if time.monotonic() > deadline:
            raise DeadlineExceeded(self.tsp, f"GET {path}: no complete answer within "
                                             f"{self.limits.request_deadline_s:g} s (limit FLEETLAKE_REQUEST_DEADLINE_S)")
        return b"".join(parts)

    def _delay(self, attempt: int, exc: _Retryable) -> float:
        """Seconds to wait after failed attempt number `attempt`."""
        if exc.retry_after_s is not None:
            return exc.retry_after_s
        # Exponential backoff with full jitter: spreads many fleets' retries apart.
        cap = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** (attempt - 1))
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
