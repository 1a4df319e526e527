"""Serve the fake TSP APIs over real HTTP: one port, Samsara under /samsara, Motive under /motive."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from sandbox.admin import admin_routes
from sandbox.http import QuietDrops
from sandbox.motive_api import MotiveApp
from sandbox.samsara_api import SamsaraApp
from sandbox.world import SandboxConfig, SandboxWorld


@dataclass(frozen=True)
class TspEndpoint:
    base_url: str
    client_id: str
    client_secret: str


def _quiet_deliberate_drops() -> None:
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietDrops) for f in log.filters):
        log.addFilter(QuietDrops())


def build_app(world: SandboxWorld) -> Starlette:
    return Starlette(routes=[
        Mount("/samsara", app=SamsaraApp(world).app),
        Mount("/motive", app=MotiveApp(world).app),
        *admin_routes(world),
    ])


class SandboxServer:
    """The sandbox on a background thread; use as a context manager or start()/stop()."""

    def __init__(self, config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        _quiet_deliberate_drops()
        self.world = SandboxWorld(config)
        self.host = host
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and
        # without it every keep-alive response waits ~40 ms for a delayed ACK (headers and body
        # are separate writes).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(build_app(self.world), log_level="warning", access_log=False,
                                                     lifespan="off", timeout_keep_alive=30))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoint(self, tsp: str) -> TspEndpoint:
        cid, secret = self.world.credentials[tsp]
        return TspEndpoint(f"{self.base_url}/{tsp}", cid, secret)

    def describe(self) -> dict[str, dict[str, str]]:
        return {tsp: {"base_url": e.base_url, "client_id": e.client_id, "client_secret": e.client_secret}
                for tsp in ("samsara", "motive") for e in [self.endpoint(tsp)]}

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="fleetlake-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def serve_until_signalled(self, on_ready: Callable[[SandboxServer], None]) -> None:
        """Serve until SIGINT or SIGTERM (the `fleetlake sandbox` command); `on_ready` runs once
        the port accepts connections."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            on_ready(self)
            while not stop.wait(0.5):
                if self._thread is not None and not self._thread.is_alive():
                    raise RuntimeError("the sandbox server stopped unexpectedly")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
