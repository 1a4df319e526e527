"""Which forwarded headers to believe: X-Forwarded-For, -Proto and -Host only from a trusted proxy.

Any client can send these headers, so they mean something only when the peer that sent the
request is a proxy the operator named (FLEETLAKE_TRUSTED_PROXIES); from anyone else they are
ignored. The daemon's HTTP server rewrites nothing itself (uvicorn's proxy_headers is off), so
this module is the one place that decides.

- The client's address: X-Forwarded-For read from the right (each proxy appends the peer it
  saw), skipping trusted proxies; the first address that is not one is the client.
- The origin the browser used (scheme and host): the nearest proxy's X-Forwarded-Proto and
  X-Forwarded-Host (the last value of each), so a value the client put in front is never taken.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 16  # more X-Forwarded-For entries than any real proxy chain: the rest is not read


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _last(value: str | None) -> str | None:
    """The last entry of a comma-separated header: the one the nearest proxy wrote."""
    if not value:
        return None
    last = value.rsplit(",", 1)[-1].strip()
    return last or None


def origin_of(url: str) -> str:
    """scheme://host[:port] as a browser names it in Origin: lower case, no default port, no path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


@dataclass(frozen=True)
class Proxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, cidrs: list[str]) -> Proxies:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def trusts(self, address: str | None) -> bool:
        ip = _ip(address) if address else None
        return ip is not None and any(ip in n for n in self.networks)

    def peer(self, request: Request) -> str:
        return request.client.host if request.client else ""

    def client(self, request: Request) -> str:
        """The address of the client that made the request, seen through trusted proxies only."""
        current = self.peer(request)
        if not self.trusts(current):
            return current
        hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
        for hop in reversed(hops[-MAX_HOPS:]):
            current = hop[:64]
            if not self.trusts(current):
                break
        return current

    def origin(self, request: Request) -> str:
        """The origin the browser addressed: forwarded by a trusted proxy, or this request's own."""
        scheme, host = request.url.scheme, request.headers.get("host", "")
        if self.trusts(self.peer(request)):
            proto = _last(request.headers.get("x-forwarded-proto"))
            if proto in ("http", "https"):
                scheme = proto
            host = _last(request.headers.get("x-forwarded-host")) or host
        return origin_of(f"{scheme}://{host}")
