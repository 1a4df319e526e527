"""Free TCP ports on loopback, for servers a test starts.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from its ephemeral range, the same
range it draws the source port of every outgoing connection from. Between our choosing such a port
and a server binding it, any connection another xdist worker opens can take it (CI once lost the
session's SeaweedFS that way: weed exited 255 and 26 tests errored). So ports are drawn at random
from below the ephemeral range and above Ray's worker range, where the kernel never allocates, and
only fall back to the kernel's choice when that band is too narrow. Each xdist worker draws from
its own share of the band: two workers drawing from all of it at the same moment could pick the
same port (a daemon once found its HTTP port taken by another worker's server).
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

RAY_WORKER_PORTS = range(10002, 20000)  # Ray's default worker port range: a server of ours must stay out of it
_QUIET_FLOOR = RAY_WORKER_PORTS.stop
_MIN_BAND = 2000  # below this many candidates, random draws between workers would collide too often


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere the bind check below still holds


def quiet_band() -> range:
    """Ports no kernel allocation will hand to anyone else: empty when the band is too narrow."""
    band = range(_QUIET_FLOOR, _ephemeral_start())
    return _worker_share(band) if len(band) >= _MIN_BAND else range(0)


def _worker_share(band: range) -> range:
    """This pytest-xdist worker's slice of `band` (all of it outside xdist)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return band
    size = len(band) // int(count)
    start = band.start + int(worker[2:]) * size
    return range(start, start + size)


def _bound(port: int) -> socket.socket | None:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def free_ports(n: int, avoid: range = range(0)) -> list[int]:
    """`n` distinct free ports (held together while chosen, so they differ), none in `avoid`."""
    band = quiet_band()
    socks: list[socket.socket] = []
    try:
        tries = 0
        while len(socks) < n:
            tries += 1
            port = random.choice(band) if band and tries < 50 * n else 0
            if port in avoid:
                continue
            s = _bound(port)
            if s is None:
                continue
            if s.getsockname()[1] in avoid:  # only the kernel's choice (port 0) can land here
                s.close()
                continue
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(avoid: range = range(0)) -> int:
    return free_ports(1, avoid)[0]
