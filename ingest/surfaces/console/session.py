"""Console logins: a signed session cookie, CSRF tokens bound to the session, and the Origin check.

- Only FLEETLAKE_CONSOLE_PASSWORD logs in: the API token does not (guessing the console must not
  guess the API), and failed logins are slowed and locked (ingest.surfaces.console.throttle).
- Behind an authenticating proxy, FLEETLAKE_CONSOLE_AUTH_HEADER names the header in which the
  proxy names the signed-in user; it is believed only from FLEETLAKE_TRUSTED_PROXIES. Such a
  session lives as long as the proxy sends the header: there is no cookie and nothing to log out.
- The cookie holds a random session id and an expiry, signed with HMAC-SHA256 (stdlib: the web
  stack carries no signing library). Its key is derived from FLEETLAKE_TOKEN_KEY and from the
  password, so a restart keeps sessions but a changed password ends them all. Without a token
  key, the key is random per process.
- The cookie is HttpOnly and SameSite=Strict (and Secure behind https): no script reads it and no
  other site's page sends it.
- Logout forgets the session id server-side too, so a copied cookie dies with the logout.
- Every POST carries a CSRF token (an HMAC of the session id) and must come from our own origin
  (this request's, as a trusted proxy forwards it, or FLEETLAKE_PUBLIC_URL's): a cross-site form
  fails either check on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request

from ingest.wiring.proxies import Proxies, origin_of
from ingest.wiring.settings import Settings

COOKIE = "fleetlake_session"


@dataclass(frozen=True)
class Session:
    sid: str
    expires: float
    proxy_user: str | None = None  # signed in by the authenticating proxy's header, not a cookie


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, settings: Settings) -> None:
        secret = settings.console_password.get_secret_value() if settings.console_password else ""
        self._password = secret.encode() or None
        self.proxies = Proxies.of(settings.trusted_proxies)
        self.auth_header = settings.console_auth_header
        self.public_origin = origin_of(settings.public_url) if settings.public_url else None
        seed = settings.token_key.get_secret_value().encode() if settings.token_key else os.urandom(32)
        creds = hashlib.sha256(self._password or b"").digest()
        self._key = hmac.new(seed, b"fleetlake console session\0" + creds, hashlib.sha256).digest()
        self.max_age_s = int(settings.console_session_hours * 3600)
        self.secure = (settings.public_url or "").startswith("https://")
        self._ended: dict[str, float] = {}  # logged-out session id -> its expiry
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when no console password is set: then nobody logs in with a password."""
        return self._password is not None

    def check_password(self, given: str) -> bool:
        return self._password is not None and hmac.compare_digest(given.encode(), self._password)

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def new(self) -> tuple[Session, str]:
        """A new session and its cookie value."""
        s = Session(secrets.token_urlsafe(18), time.time() + self.max_age_s)
        payload = json.dumps({"sid": s.sid, "exp": int(s.expires)}, separators=(",", ":")).encode()
        return s, f"{_b64(payload)}.{self._sign(payload)}"

    def read(self, request: Request) -> Session | None:
        """The request's valid session, or None (no cookie, bad signature, expired, logged out)."""
        proxied = self.proxy_session(request)
        if proxied is not None:
            return proxied
        value = request.cookies.get(COOKIE, "")
        body, _, sig = value.partition(".")
        if not body or not sig:
            return None
        try:
            payload = _unb64(body)
            if not hmac.compare_digest(sig, self._sign(payload)):
                return None
            d = json.loads(payload)
            s = Session(str(d["sid"]), float(d["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        if s.expires < time.time():
            return None
        with self._lock:
            if s.sid in self._ended:
                return None
        return s

    def proxy_session(self, request: Request) -> Session | None:
        """The session the authenticating proxy vouches for, when it is a trusted proxy that sent the header."""
        if not self.auth_header or not self.proxies.trusts(self.proxies.peer(request)):
            return None
        user = request.headers.get(self.auth_header, "").strip()
        if not user:
            return None
        # One stable id per user, so the CSRF token stays valid from page to page.
        sid = "proxy:" + _b64(hmac.new(self._key, b"proxy user\0" + user.encode(), hashlib.sha256).digest()[:18])
        return Session(sid, time.time() + self.max_age_s, proxy_user=user[:120])

    def same_origin(self, request: Request) -> bool:
        """A POST must name our own origin (Origin, or failing that Referer); a request naming neither
        is refused: every browser sends Origin on a form POST. Ours: this request's origin (as a
        trusted proxy forwards it) or FLEETLAKE_PUBLIC_URL's."""
        own = {self.proxies.origin(request)} | ({self.public_origin} if self.public_origin else set())
        origin = request.headers.get("origin")
        if origin is not None:
            return origin_of(origin) in own if origin != "null" else False
        referer = request.headers.get("referer")
        return referer is not None and origin_of(referer) in own

    def end(self, s: Session) -> None:
        now = time.time()
        with self._lock:
            self._ended = {k: v for k, v in self._ended.items() if v > now}  # expired ones are refused anyway
            self._ended[s.sid] = s.expires

    def csrf(self, s: Session) -> str:
        return self._sign(b"csrf\0" + s.sid.encode())

    def check_csrf(self, s: Session, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf(s).encode())

    def cookie_args(self) -> dict[str, object]:
        return {"key": COOKIE, "max_age": self.max_age_s, "httponly": True, "samesite": "strict",
                "secure": self.secure, "path": "/"}

