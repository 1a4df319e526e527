"""Free TCP ports on loopback, for servers a test starts."""

from __future__ import annotations

import socket

RAY_WORKER_PORTS = range(10002, 20000)  # Ray's default worker port range: a server of ours must stay out of it


def free_ports(n: int, avoid: range = range(0)) -> list[int]:
    """`n` distinct free ports (held together while chosen, so they differ), none in `avoid`."""
    socks: list[socket.socket] = []
    try:
        while len(socks) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            if s.getsockname()[1] in avoid:
                s.close()
                continue
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(avoid: range = range(0)) -> int:
    return free_ports(1, avoid)[0]
