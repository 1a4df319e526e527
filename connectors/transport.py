"""An httpx transport on the standard library's http.client: the same requests for a third of the CPU.

httpx's default transport (httpcore and h11, in Python) spent about 400 µs of CPU per TSP page of
80-90 kB, more than decoding the page; http.client (its parser in C where it matters) needs
about 100 µs. `TspHttp` keeps everything it does above the transport (auth and the 401 replay,
timeouts, the streamed and bounded body read, the deadline, retries), so only the socket work
moves here. Pulls get it through `connectors.providers.open_connector`; a `TspHttp` built without
a transport keeps httpx's (the unit tests mock that one with respx).

`exchange` is the transport without httpx's objects: a request target and header pairs in, the
status, header pairs and an iterator of body chunks out. `TspHttp` calls it directly on a pull's
pages (its lean path: httpx's Request, URL parse, client send and Response objects cost about
250 µs of a page's 360); `handle_request` wraps it for httpx, for everything else.

What it does, as httpcore does for us: one pool of kept-alive connections per (scheme, host,
port), shared by threads; the body streamed as the socket gives it (raw: content encodings are
decoded by `TspHttp._read_body` with a bounded output), a read at most what is left of the
Content-Length (most pages arrive in one or two reads); a kept-alive connection the server closed
meanwhile is retried once on a fresh one before anything of the response was read; socket errors
raised as httpx's transport errors, so the retry policy sees the same exceptions.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx

_CHUNK = 64 << 10     # a read when the length is unknown (chunked bodies)
_MAX_READ = 1 << 20   # a read of a body with a Content-Length: what is left of it, up to this
_IDLE_PER_HOST = 16
Key = tuple[str, str, int]  # (scheme, host, port): one pool of connections each


class _Body(httpx.SyncByteStream):
    """A response body read as it arrives; the connection goes back to the pool when read to its end."""

    def __init__(self, transport: LeanTransport, key: Key, conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        self.transport, self.key, self.conn, self.response = transport, key, conn, response
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            r = self.response
            while True:
                data = r.read1(min(r.length, _MAX_READ) if r.length else _CHUNK)
                if not data:
                    if self.response.length:  # the server closed before Content-Length: a cut body
                        raise http.client.IncompleteRead(b"", self.response.length)
                    self.done = True
                    return
                yield data
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise _mapped(e, "read") from None

    def close(self) -> None:
        r = self.response
        keep = self.done and not r.will_close
        r.close()  # the response's file, not the socket: the connection holds that
        if keep:
            self.transport._release(self.key, self.conn)  # read to its end, the server keeps it open
        else:
            self.conn.close()


def _mapped(e: BaseException, phase: str) -> httpx.TransportError:
    if isinstance(e, socket.timeout | TimeoutError):
        return httpx.ConnectTimeout(str(e)) if phase == "connect" else httpx.ReadTimeout(str(e))
    if phase == "connect":
        return httpx.ConnectError(str(e) or type(e).__name__)
    if isinstance(e, http.client.HTTPException):
        return httpx.RemoteProtocolError(str(e) or type(e).__name__)
    return httpx.ReadError(str(e) or type(e).__name__)


class LeanTransport(httpx.BaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False  # a body read to its end after close() closes its connection

    def _release(self, key: Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < _IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _connect(self, key: Key, timeouts: dict[str, Any]) -> http.client.HTTPConnection:
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeouts.get("connect"), context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeouts.get("connect"))
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _mapped(e, "connect") from None
        return conn

    def exchange(self, key: Key, method: str, target: str, headers: list[tuple[str, str]],
                 timeouts: dict[str, Any], body: bytes | None = None) -> tuple[int, list[tuple[str, str]], _Body]:
        """Send one request; its status, headers and body (iterate it, then close it: the connection
        goes back to the pool when the body was read to its end)."""
        for fresh in (False, True):
            conn = None if fresh else self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._connect(key, timeouts)
            try:
                assert conn.sock is not None
                conn.sock.settimeout(timeouts.get("read"))
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders(body)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if reused and not isinstance(e, socket.timeout | TimeoutError):
                    continue  # a kept-alive connection the server had closed: once more on a new one
                raise _mapped(e, "read") from None
            return response.status, response.getheaders(), _Body(self, key, conn, response)
        raise AssertionError("unreachable")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        status, got, stream = self.exchange(key, request.method, url.raw_path.decode("ascii"), headers,
                                            request.extensions.get("timeout", {}), request.read() or None)
        return httpx.Response(status, headers=got, stream=stream, extensions={"http_version": b"HTTP/1.1"})

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, {}, True
        for conns in idle.values():
            for c in conns:
                c.close()
