"""What time it is for the daemon: the system's UTC clock, or one served over HTTP.

A served clock lets a whole deployment run in simulated time (the sandbox serves one at
`/_sandbox/clock`); the core knows only the tiny contract: `GET <url>` answers `{"now_ms": <int>}`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from common.errors import ConfigError
from connectors.http import tls_context


class Clock(Protocol):
    def now_ms(self) -> int: ...


@dataclass(frozen=True)
class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


@dataclass(frozen=True)
class HttpClock:
    url: str
    # One client for every read (keep-alive, one TLS context): a client per read cost more CPU
    # than the read itself.
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10, verify=tls_context()),
                                compare=False, repr=False)

    def now_ms(self) -> int:
        try:
            return int(self._http.get(self.url).json()["now_ms"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            raise ConfigError("FLEETLAKE_CLOCK_URL", f"the clock at {self.url} did not answer with now_ms: "
                                                     f"{type(e).__name__}") from None


def clock_at(url: str | None) -> Clock:
    """The clock served at `url`, or the system clock when there is none."""
    return HttpClock(url) if url else SystemClock()
