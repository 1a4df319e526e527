"""TspHttp's lean path (our transport without httpx's request and response objects), over real HTTP.

A pull's pages skip httpx's Request, URL parse and client send (connectors/http.py). What the
server receives must not change for it: the same request line (path and query quoted as httpx
quotes them) and the same headers as httpx's path over the same transport; an auth's 401 replay
still happens once; encoded bodies are still decoded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from common.errors import AuthError
from connectors.http import HeaderAuth, RetryPolicy, TspHttp, query_string
from connectors.transport import LeanTransport
from tests.support.httpd import serving

FAST = RetryPolicy(max_attempts=2, max_total_s=5, base_delay_s=0.001, max_delay_s=0.01)


class _Server(ThreadingHTTPServer):
    seen: list[tuple[str, dict[str, str]]]
    refuse: set[str]  # Authorization values answered 401


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the TSPs answer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: _Server = self.server  # type: ignore[assignment]
        headers = {k.lower(): v for k, v in self.headers.items()}
        server.seen.append((self.requestline, headers))
        if headers.get("authorization") in server.refuse:
            body, status, extra = b'{"message":"expired"}', 401, []
        elif self.path.startswith("/api/gzip"):
            body, status, extra = gzip.compress(b'{"data":[1,2,3]}'), 200, [("Content-Encoding", "gzip")]
        else:
            body, status, extra = json.dumps({"path": self.path}).encode(), 200, []
        self.send_response(status)
        for k, v in [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra]:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen, server.refuse = [], set()
    with serving(server):
        yield server


class _Bearer(HeaderAuth):
    """A bearer token that a 401 replaces once, as BearerAuth does with a refresh."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
        response = yield request
        if response.status_code == 401 and len(self.tokens) > 1:
            self.tokens.pop(0)
            request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
            yield request


class _PlainBearer(httpx.Auth):
    """The same flow as an auth TspHttp knows nothing about: it takes httpx's path."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


PARAMS = {"types": "gps,gpsOdometerMeters", "startTime": "2026-02-01T00:00:00.000Z", "limit": 512,
          "after": "a b/c?d=e&f+g", "decorated": True, "gone": None, "ids": ["1", "2 3"], "städte": "Zürich"}


@pytest.mark.parametrize("path", ["/fleet/vehicles/stats/history", "v3/vehicle_locations/42",
                                  "/odd path/ünï?", "/fleet/[x]%zz"])
def test_the_lean_path_sends_what_httpx_would(path: str) -> None:
    with _server() as server:
        base = f"http://127.0.0.1:{server.server_port}/api"
        lean = TspHttp("samsara", base, _Bearer(["tok-1"]), policy=FAST, transport=LeanTransport())
        plain = TspHttp("samsara", base, _PlainBearer("tok-1"), policy=FAST, transport=LeanTransport())
        assert lean._lean is not None and plain._lean is None  # one of each path
        try:
            for http in (lean, plain):
                assert http.get(path, PARAMS).status_code == 200
        finally:
            lean.close()
            plain.close()
    (line_lean, headers_lean), (line_plain, headers_plain) = server.seen
    assert line_lean == line_plain
    assert headers_lean == headers_plain
    assert headers_lean["authorization"] == "Bearer tok-1" and headers_lean["host"] == f"127.0.0.1:{server.server_port}"


def test_query_string_encodes_as_httpx_does() -> None:
    assert query_string(PARAMS) == str(httpx.QueryParams(PARAMS))


def test_a_401_is_replayed_once_on_the_lean_path() -> None:
    with _server() as server:
        server.refuse = {"Bearer stale"}
        http = TspHttp("samsara", f"http://127.0.0.1:{server.server_port}/api", _Bearer(["stale", "fresh"]),
                       policy=FAST, transport=LeanTransport())
        try:
            assert http.get("/fleet/vehicles", {"limit": 5}).json() == {"path": "/api/fleet/vehicles?limit=5"}
            assert [h["authorization"] for _, h in server.seen] == ["Bearer stale", "Bearer fresh"]
            server.refuse = {"Bearer fresh"}
            with pytest.raises(AuthError, match="refused"):  # the auth gives up: a 401 is the answer
                http.get("/fleet/vehicles")
        finally:
            http.close()


def test_an_encoded_body_is_decoded_on_the_lean_path() -> None:
    with _server() as server:
        http = TspHttp("samsara", f"http://127.0.0.1:{server.server_port}/api", None, policy=FAST,
                       transport=LeanTransport())
        try:
            r = http.get("/gzip")
            r2 = http.get("/gzip")  # the same kept-alive connection, its body read to the end
        finally:
            http.close()
    assert r.json() == r2.json() == {"data": [1, 2, 3]}
    assert "content-encoding" not in r.headers
    assert server.seen[0][1]["accept-encoding"] == "gzip, deflate"


def test_a_body_finished_after_the_transport_closed_closes_its_connection() -> None:
    # A slice thread still reading when the connector closes must not put its connection back in
    # a pool nobody will close again (the socket would leak until the GC found it).
    with _server() as server:
        transport = LeanTransport()
        key = ("http", "127.0.0.1", server.server_address[1])
        status, _, body = transport.exchange(key, "GET", "/api/x", [("Host", f"127.0.0.1:{key[2]}")], {})
        transport.close()
        assert status == 200 and b"".join(body) == b'{"path": "/api/x"}'
        body.close()
        assert body.conn.sock is None  # closed, not pooled
        assert transport._take(key) is None
        # Before close() the same finished body goes back to the pool, kept alive.
        open_transport = LeanTransport()
        _, _, kept = open_transport.exchange(key, "GET", "/api/y", [("Host", f"127.0.0.1:{key[2]}")], {})
        b"".join(kept)
        kept.close()
        assert open_transport._take(key) is kept.conn and kept.conn.sock is not None
        kept.conn.close()
        open_transport.close()
