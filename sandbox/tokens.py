"""OAuth2 authority shared by the fake TSP servers: codes, rotating refresh tokens, revocation.

Access tokens expire after `ttl_s` of wall time or of sandbox time, whichever passes first, so
both a short TTL in a test and a clock jumped a month ahead expire them, as they would for real.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from sandbox.clock import SandboxClock

CODE_TTL_S = 600


class OAuthError(Exception):
    """An OAuth2 error response: `error` is the RFC 6749 code, `status` the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Grant:
    fleet_id: str
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass
class _Access:
    fleet_id: str
    issued_wall: float
    issued_sandbox_ms: int
    ttl_s: int


@dataclass
class _Code:
    fleet_id: str
    client_id: str
    redirect_uri: str
    expires_wall: float


class TokenAuthority:
    def __init__(self, clock: SandboxClock, clients: dict[str, str], ttl_s: int, prefix: str) -> None:
        self._clock = clock
        self._clients = dict(clients)
        self.ttl_s = ttl_s
        self._prefix = prefix
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, str] = {}  # live refresh token -> fleet
        self._used_refresh: set[str] = set()
        self._revoked: set[str] = set()
        self._api_keys: dict[str, str] = {}
        self.revocations = 0  # grants ended by the client (RFC 7009), for tests
        self.grants = 0  # token sets issued (codes exchanged and refreshes), for tests

    # -- clients and fleets
    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if not client_id or self._clients.get(client_id) is None or not secrets.compare_digest(
                self._clients[client_id], client_secret or ""):
            raise OAuthError("invalid_client", "client authentication failed", 401)

    def has_client(self, client_id: str) -> bool:
        return client_id in self._clients

    def api_key(self, fleet_id: str) -> str:
        with self._lock:
            if fleet_id not in self._api_keys:
                self._api_keys[fleet_id] = f"{self._prefix}key_{secrets.token_urlsafe(24)}"
            return self._api_keys[fleet_id]

    def revoke(self, fleet_id: str) -> None:
        """The fleet withdrew consent: every token and key of it stops working."""
        with self._lock:
            self._revoked.add(fleet_id)
            for rt, f in list(self._refresh.items()):
                if f == fleet_id:
                    del self._refresh[rt]

    def revoke_token(self, token: str | None) -> bool:
        """RFC 7009 revocation by the client: the grant a token belongs to ends (its refresh token
        and every access token of the fleet). An unknown or already revoked token is no error (the
        RFC answers 200 either way); returns whether something was revoked, for the sandbox's stats."""
        with self._lock:
            fleet = self._refresh.get(token or "")
            if fleet is None and token in self._access:
                fleet = self._access[token or ""].fleet_id
            if fleet is None:
                return False
            for rt, f in list(self._refresh.items()):
                if f == fleet:
                    del self._refresh[rt]
            for at, a in list(self._access.items()):
                if a.fleet_id == fleet:
                    del self._access[at]
            self.revocations += 1
            return True

    def restore(self, fleet_id: str) -> None:
        """Consent given again (tokens issued before stay dead; a new authorization is needed)."""
        with self._lock:
            self._revoked.discard(fleet_id)

    # -- grants
    def issue_code(self, client_id: str, redirect_uri: str, fleet_id: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._revoked.discard(fleet_id)  # a fresh consent re-enables the fleet
            self._codes[code] = _Code(fleet_id, client_id, redirect_uri, time.monotonic() + CODE_TTL_S)
        return code

    def exchange_code(self, client_id: str, code: str | None, redirect_uri: str | None) -> Grant:
        with self._lock:
            c = self._codes.pop(code or "", None)  # single use, even when it fails below
        if c is None or c.expires_wall < time.monotonic():
            raise OAuthError("invalid_grant", "authorization code is invalid, expired or already used")
        if c.client_id != client_id:
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if redirect_uri is not None and redirect_uri != c.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        return self._grant(c.fleet_id)

    def refresh(self, refresh_token: str | None) -> Grant:
        with self._lock:
            fleet = self._refresh.pop(refresh_token or "", None)
            if fleet is None:
                reused = (refresh_token or "") in self._used_refresh
                raise OAuthError("invalid_grant", "refresh token was already used" if reused
                                 else "refresh token is invalid or revoked")
            self._used_refresh.add(refresh_token or "")
        return self._grant(fleet)

    def _grant(self, fleet_id: str) -> Grant:
        access = f"{self._prefix}at_{secrets.token_urlsafe(32)}"
        refresh = f"{self._prefix}rt_{secrets.token_urlsafe(32)}"
        with self._lock:
            self._access[access] = _Access(fleet_id, time.monotonic(), self._clock.now_ms(), self.ttl_s)
            self._refresh[refresh] = fleet_id
            self.grants += 1
        return Grant(fleet_id, access, refresh, self.ttl_s)

    # -- resource access
    def fleet_for_bearer(self, token: str) -> str:
        with self._lock:
            a = self._access.get(token)
            if a is None:
                raise OAuthError("invalid_token", "access token is invalid", 401)
            if a.fleet_id in self._revoked:
                raise OAuthError("invalid_token", "access token has been revoked", 401)
            expired = (time.monotonic() - a.issued_wall >= a.ttl_s
                       or self._clock.now_ms() - a.issued_sandbox_ms >= a.ttl_s * 1000)
            if expired:
                raise OAuthError("invalid_token", "access token has expired", 401)
            return a.fleet_id

    def fleet_for_api_key(self, key: str) -> str:
        with self._lock:
            for fleet, k in self._api_keys.items():
                if secrets.compare_digest(k, key):
                    if fleet in self._revoked:
                        raise OAuthError("invalid_token", "API key has been revoked", 401)
                    return fleet
        raise OAuthError("invalid_token", "API key is invalid", 401)
