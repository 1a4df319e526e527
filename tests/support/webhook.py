"""A local webhook receiver over real HTTP for alert tests: records every JSON body it is sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.httpd import serving


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_next = 0  # answer this many requests with 503 first
        self._lock = threading.Lock()
        self.url = ""

    def events(self, prefix: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [b for b in self.bodies if str(b.get("event", "")).startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.events(prefix)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise AssertionError(f"waited {timeout_s}s for {count} {prefix!r} alerts, got {self.events()}")


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rec._lock:
                if rec.fail_next > 0:
                    rec.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                rec.bodies.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with serving(server):
        yield rec
