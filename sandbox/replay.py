"""A replay TSP for benchmarks: the sandbox's pages, rendered once, served for a few µs of CPU each.

The sandbox renders every page from its simulator at each request, which costs more CPU than the
daemon spends pulling it: a benchmark of the daemon on two cores would measure the fake. The
replay sits in front of a running sandbox (its *upstream*) and:

- forwards OAuth (authorize, token, revoke) and the sandbox's admin routes to it, so consent,
  token rotation and single use are the sandbox's own; from those exchanges it learns which
  fleet each access token belongs to (the authorize request names the fleet, its redirect the
  code, the token response the tokens; a refresh keeps the fleet of the refresh token);
- answers a data request (GET) from its recording when it holds the page for (fleet, path,
  query): the bytes the sandbox answered, so paging, cursors and bodies are the vendors' as the
  sandbox renders them and the connectors cannot tell; a page it does not hold is fetched from
  the upstream once and recorded (a warm-up run renders every page a benchmark will ask for);
- checks the bearer token (an unknown one is forwarded, and what comes back is not recorded;
  a revoked one is forgotten) and paces each token with a token bucket (429 with Retry-After,
  like the sandbox), per TSP rates given at start;
- drops its recording when the sandbox's clock or faults change (any admin POST), since pages
  near "now" change with the clock.

Served by a minimal HTTP/1.1 server on asyncio (keep-alive, Content-Length bodies, no chunked
requests). A hit is two dict lookups (the request target to its page key, memoised once per
distinct target; the token to its fleet and bucket) and one write of bytes rendered once: tens
of µs of CPU, most of it the kernel copying the page. `GET /_replay/stats` reports requests,
hits, misses, bytes served (per TSP too) and this process's CPU seconds, so benchmarks print the
fake's CPU beside the daemon's.

    python -m sandbox.replay --upstream http://127.0.0.1:8080 [--port 0] [--samsara-rate 20] [--motive-rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

_OAUTH = ("/oauth2/authorize", "/oauth2/token", "/oauth2/revoke", "/oauth/authorize", "/oauth/token", "/oauth/revoke")
_KEEP = ("content-type", "location", "retry-after", "cache-control", "www-authenticate")
MAX_ROUTES = 1_000_000
_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


def _response(status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


_THROTTLED = _response(429, b'{"message":"rate limit exceeded"}', [("Content-Type", "application/json"),
                                                                   ("Retry-After", "1")])


@dataclass
class _Bucket:
    rate: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class ReplayStats:
    requests: int = 0
    hits: int = 0
    misses: int = 0
    forwarded: int = 0
    throttled: int = 0
    rejected: int = 0
    bytes: int = 0                                                   # of pages answered from the recording
    per_tsp: dict[str, list[int]] = field(default_factory=dict)      # tsp -> [hits, bytes served]


@dataclass(frozen=True)
class _Route:
    """What a request target is, worked out once per distinct target (the hit path only looks it up)."""

    tsp: str
    page: str   # path?canonical query: the recording's key beside the fleet; "" for a target that is not data


@dataclass
class Replay:
    upstream: str
    rates: dict[str, float]  # per TSP (first path segment): requests per second per token
    pages: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (fleet, path?query) -> whole response
    fleets: dict[str, str] = field(default_factory=dict)              # access or refresh token -> fleet
    codes: dict[str, str] = field(default_factory=dict)               # authorization code -> fleet
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    stats: ReplayStats = field(default_factory=ReplayStats)
    client: httpx.AsyncClient | None = None
    routes: dict[str, _Route] = field(default_factory=dict)          # request target -> its route (memo)

    # ------------------------------------------------------------------ one request
    def answer_now(self, method: str, target: str, headers: dict[str, str]) -> bytes | None:
        """The answer when no upstream call is needed (a recorded page, a 429, the stats); else None."""
        stats = self.stats
        stats.requests += 1
        if target == "/_replay/stats":
            return self._stats()
        key = self._data_key(method, target, headers)
        if key is None:
            return None
        token, tsp, page_key = key
        if not self._bucket(token, tsp).take(time.monotonic()):
            stats.throttled += 1
            return _THROTTLED
        page = self.pages.get(page_key)
        if page is not None:
            stats.hits += 1
            stats.bytes += len(page)
            counts = stats.per_tsp[tsp]
            counts[0] += 1
            counts[1] += len(page)
        return page

    async def answer_later(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """Forward to the upstream: a page not recorded yet (then recorded), OAuth, admin routes."""
        status, raw = await self._forward(method, target, headers, body)
        key = self._data_key(method, target, headers)
        if key is not None:
            self.stats.misses += 1
            if status == 200:
                self.pages[key[2]] = raw
            return raw
        path, _, query = target.partition("?")
        tsp, _, rest = path.lstrip("/").partition("/")
        self._learn(method, tsp, "/" + rest, query, body, status, raw)
        return raw

    def _data_key(self, method: str, target: str,
                  headers: dict[str, str]) -> tuple[str, str, tuple[str, str]] | None:
        """(token, tsp, page key) of a data GET with a token we know the fleet of; None otherwise."""
        if method != "GET":
            return None
        route = self.routes.get(target)
        if route is None:
            route = self.routes[target] = self._route(target)
        if not route.page:
            return None
        auth = headers.get("authorization", "")
        fleet = self.fleets.get(auth[7:]) if auth.startswith("Bearer ") else None
        if fleet is None:
            return None  # forwarded: the sandbox answers it (401 for a token it never issued)
        return auth[7:], route.tsp, (fleet, route.page)

    def _route(self, target: str) -> _Route:
        if len(self.routes) > MAX_ROUTES:
            self.routes.clear()  # a memo, not a record: distinct targets beyond it are worked out again
        path, _, query = target.partition("?")
        tsp, _, rest = path.lstrip("/").partition("/")
        if tsp not in self.rates or "/" + rest in _OAUTH:
            return _Route(tsp, "")
        self.stats.per_tsp.setdefault(tsp, [0, 0])
        return _Route(tsp, f"{path}?{_canonical(query)}")

    def _bucket(self, token: str, tsp: str) -> _Bucket:
        b = self.buckets.get(token)
        if b is None:
            rate = self.rates[tsp]
            b = self.buckets[token] = _Bucket(rate, rate, time.monotonic())
        return b

    def _stats(self) -> bytes:
        s = self.stats
        body = json.dumps({"requests": s.requests, "hits": s.hits, "misses": s.misses, "forwarded": s.forwarded,
                           "throttled": s.throttled, "bytes": s.bytes, "pages": len(self.pages),
                           "per_tsp": {t: {"hits": n, "bytes": b} for t, (n, b) in s.per_tsp.items()},
                           "cpu_s": time.process_time()})
        return _response(200, body.encode(), [("Content-Type", "application/json")])

    async def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        assert self.client is not None
        self.stats.forwarded += 1
        # The client's Host goes upstream too: the sandbox names its URLs from it (`/_sandbox/apps`
        # hands out api_url and auth_url), so a daemon configured with the replay's URL is sent
        # back to the replay, not around it to the sandbox.
        send = {k: v for k, v in headers.items() if k in ("authorization", "content-type", "accept", "host")}
        try:
            r = await self.client.request(method, self.upstream + target, headers=send, content=body or None)
        except httpx.HTTPError as e:
            return 502, _response(502, f"upstream: {type(e).__name__}".encode())
        keep = [(k, v) for k, v in r.headers.items() if k.lower() in _KEEP]
        return r.status_code, _response(r.status_code, r.content, keep)

    def _learn(self, method: str, tsp: str, rest: str, query: str, body: bytes, status: int, raw: bytes) -> None:
        """Which fleet a code and the tokens it buys belong to; forget the recording when the world changes."""
        if tsp == "_sandbox" and method != "GET":
            self.pages.clear()  # the clock or the faults moved: pages near now differ
            return
        if rest.endswith("/authorize") and status == 302:
            fleet = dict(parse_qsl(query)).get("fleet")
            head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            location = next((ln.split(":", 1)[1].strip() for ln in head.split("\r\n")
                             if ln.lower().startswith("location:")), "")
            code = dict(parse_qsl(urlsplit(location).query)).get("code")
            if fleet and code:
                self.codes[code] = fleet
        elif rest.endswith("/token") and status == 200:
            form = dict(parse_qsl(body.decode("latin-1")))
            fleet = (self.codes.pop(form.get("code", ""), None) if form.get("grant_type") == "authorization_code"
                     else self.fleets.get(form.get("refresh_token", "")))
            if fleet is None:
                return
            tokens = json.loads(raw.split(b"\r\n\r\n", 1)[1])
            for k in ("access_token", "refresh_token"):
                if tokens.get(k):
                    self.fleets[tokens[k]] = fleet
            if form.get("grant_type") == "refresh_token":
                self.fleets.pop(form.get("refresh_token", ""), None)  # single use: the sandbox refuses it again
        elif rest.endswith("/revoke"):
            form = dict(parse_qsl(body.decode("latin-1")))
            self.fleets.pop(form.get("token", ""), None)


def _canonical(query: str) -> str:
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


class _Http(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: requests are parsed from the buffer as they complete, answered in order."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return
        head = self.buf[:end].decode("latin-1").split("\r\n")
        method, target, _ = (head[0].split(" ") + ["", ""])[:3]
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length") or 0)
        if len(self.buf) < end + 4 + n:
            return
        body = self.buf[end + 4:end + 4 + n]
        self.buf = self.buf[end + 4 + n:]
        close = headers.get("connection", "").lower() == "close"
        # A hit is answered here and now; only what the upstream must answer waits on a task.
        raw = self.replay.answer_now(method, target, headers)
        if raw is not None:
            self._send(raw, close)
            return
        self.busy = True
        asyncio.ensure_future(self._finish(method, target, headers, body, close))

    async def _finish(self, method: str, target: str, headers: dict[str, str], body: bytes, close: bool) -> None:
        raw = await self.replay.answer_later(method, target, headers, body)
        self.busy = False
        self._send(raw, close)

    def _send(self, raw: bytes, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(raw)
        if close:
            self.transport.close()
            return
        if self.buf:
            self._next()


async def serve(replay: Replay, host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    replay.client = httpx.AsyncClient(timeout=120, follow_redirects=False)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http(replay), host, port)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"base_url": f"http://{host}:{bound}"}), flush=True)
    async with server:
        await stop.wait()
    await replay.client.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox.replay", description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="the running sandbox's base URL")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--samsara-rate", type=float, default=20.0)
    ap.add_argument("--motive-rate", type=float, default=10.0)
    a = ap.parse_args(argv)
    replay = Replay(a.upstream.rstrip("/"), {"samsara": a.samsara_rate, "motive": a.motive_rate})
    asyncio.run(serve(replay, a.host, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
