"""Failed console logins: slowed, then locked, per client address and for all addresses together.

The rule (README.md, "The web console", says the same):

- Per client address (an IPv6 address counts by its /64: one host holds a whole /64). Every
  attempt counts as a failure from the moment it starts, so parallel guesses count too; a
  success takes its own back and forgets the address's failures and locks.
  The first `free` failures are answered at once; every later attempt waits `delay_s` (an async
  sleep: no thread is held) before its password is checked. The `lock_after`-th failure locks
  the address for `lock_s`; each further failure (once a lock has expired) locks it again,
  twice as long, at most `max_lock_s`. While locked, attempts are refused (429, Retry-After) without checking
  the password and without lengthening the lock. An address silent for `forget_s` starts afresh.
- For all addresses: `global_failures` failures within `global_window_s` (a guesser with many
  addresses) close the login to every address that has not logged in successfully in
  the last `known_s`: 429 with Retry-After until the rate falls. Refused attempts do not count.

Why this cannot lock the operator out for good: every lock expires (at most `max_lock_s`); an
attacker's failures lock the attacker's address, not the operator's (behind a proxy, set
FLEETLAKE_TRUSTED_PROXIES so the client's own address is the key, not the proxy's); the global
gate never closes on an address that logged in lately, and it reopens as soon as the failure
rate falls; and the CLI and the JSON API (FLEETLAKE_API_TOKEN) are unaffected by all of it.

State is in memory: a restart forgets it (and takes about as long as a lock).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable


class Outcome(str, Enum):
    """A login attempt's outcome, as the fleetlake_console_logins metric labels it."""
    OK = "ok"
    FAILED = "failed"
    THROTTLED = "throttled"  # the global gate is closed
    LOCKED = "locked"        # this address is locked


@dataclass(frozen=True)
class Rule:
    free: int = 3
    delay_s: float = 1.0
    lock_after: int = 10
    lock_s: float = 60.0
    max_lock_s: float = 15 * 60.0
    forget_s: float = 24 * 3600.0
    global_failures: int = 30
    global_window_s: float = 60.0
    known_s: float = 30 * 24 * 3600.0
    max_known: int = 1000


@dataclass(frozen=True)
class Refused:
    """Not admitted: the password is not checked."""
    outcome: Outcome  # THROTTLED or LOCKED
    retry_after_s: float


@dataclass(frozen=True)
class Admitted:
    """Admitted: wait `delay_s`, check the password, hand this back to `finished`."""
    key: str
    at: float  # when it started (it counts as a failure from then on)
    delay_s: float
    failures: int  # this address's failures, this attempt included
    locked_s: float  # this attempt locked the address for so long (0: it did not)


@dataclass
class _Address:
    failures: int = 0  # since the last success (or since the address was forgotten)
    last: float = 0.0  # the last failure's start
    until: float = 0.0  # locked until


def address_key(address: str) -> str:
    """The key an address is counted under: itself, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class Throttle:
    rule: Rule = field(default_factory=Rule)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._addresses: dict[str, _Address] = {}
        self._recent: deque[float] = deque()  # start times of the failures within the global window
        self._known: dict[str, float] = {}  # address key -> its last successful login
        self._pruned = 0.0
        self._lock = threading.Lock()

    def attempt(self, address: str) -> Admitted | Refused:
        """Admit a login attempt from `address` (counted as failed until `finished` says otherwise) or refuse it."""
        r, now, key = self.rule, self.clock(), address_key(address)
        with self._lock:
            self._prune(now)
            a = self._addresses.get(key)
            if a is not None and a.until <= now and now - a.last >= r.forget_s:
                a = self._addresses[key] = _Address()  # silent long enough: a fresh start
            if a is not None and a.until > now:
                return Refused(Outcome.LOCKED, a.until - now)
            if len(self._recent) >= r.global_failures and key not in self._known:
                reopen = self._recent[len(self._recent) - r.global_failures] + r.global_window_s
                return Refused(Outcome.THROTTLED, max(reopen - now, 1.0))
            if a is None:
                a = self._addresses[key] = _Address()
            a.failures += 1
            a.last = now
            self._recent.append(now)
            locked_s = 0.0
            if a.failures >= r.lock_after:  # the lock_after-th failure and every one after it
                locked_s = min(r.max_lock_s, r.lock_s * 2.0 ** min(a.failures - r.lock_after, 32))
                a.until = now + locked_s
            return Admitted(key, now, r.delay_s if a.failures > r.free else 0.0, a.failures, locked_s)

    def finished(self, ticket: Admitted, ok: bool) -> None:
        """The password was checked: a success forgets the address's failures and locks."""
        if not ok:
            return
        with self._lock:
            self._addresses.pop(ticket.key, None)
            try:
                self._recent.remove(ticket.at)  # it was counted as a failure while it ran
            except ValueError:
                pass  # already out of the window
            self._known.pop(ticket.key, None)
            self._known[ticket.key] = self.clock()
            while len(self._known) > self.rule.max_known:
                del self._known[next(iter(self._known))]  # the oldest success

    def _prune(self, now: float) -> None:
        r = self.rule
        while self._recent and self._recent[0] <= now - r.global_window_s:
            self._recent.popleft()
        if now - self._pruned < 60.0:
            return
        self._pruned = now
        self._addresses = {k: a for k, a in self._addresses.items()
                           if a.until > now or now - a.last < r.forget_s}
        self._known = {k: t for k, t in self._known.items() if now - t < r.known_s}
