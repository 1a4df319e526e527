"""A TCP server that accepts every connection and never answers: a hung dependency over real TCP.

Used as an S3 endpoint that has stopped answering (a store behind a dead load balancer, a paused
process): connections succeed, requests are read, no byte ever comes back.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class SilentServer:
    port: int
    accepted: int = 0
    _conns: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = SilentServer(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            server.accepted += 1
            server._conns.append(conn)  # held open, never read from or written to

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield server
    finally:
        stop.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        listener.close()
        for c in server._conns:
            c.close()
