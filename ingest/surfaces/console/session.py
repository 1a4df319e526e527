"""Console logins: a signed session cookie, CSRF tokens bound to the session, and the Origin check.

- The cookie holds a random session id and an expiry, signed with HMAC-SHA256 (stdlib: the web
  stack carries no signing library). Its key is derived from FLEETLAKE_TOKEN_KEY and from the
  credentials that log in, so a restart keeps sessions but a changed password or API token ends
  them all. Without a token key, the key is random per process.
- The cookie is HttpOnly and SameSite=Strict (and Secure behind https): no script reads it and no
  other site's page sends it.
- Logout forgets the session id server-side too, so a copied cookie dies with the logout.
- Every POST carries a CSRF token (an HMAC of the session id) and must come from our own origin:
  a cross-site form fails either check on its own.
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

from ingest.wiring.settings import Settings

COOKIE = "fleetlake_session"


@dataclass(frozen=True)
class Session:
    sid: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, settings: Settings) -> None:
        self._passwords = [s.get_secret_value().encode() for s in (settings.console_password, settings.api_token)
                           if s is not None and s.get_secret_value()]
        seed = settings.token_key.get_secret_value().encode() if settings.token_key else os.urandom(32)
        creds = hashlib.sha256(b"\0".join(self._passwords)).digest()
        self._key = hmac.new(seed, b"fleetlake console session\0" + creds, hashlib.sha256).digest()
        self.max_age_s = int(settings.console_session_hours * 3600)
        self.secure = (settings.public_url or "").startswith("https://")
        self._ended: dict[str, float] = {}  # logged-out session id -> its expiry
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when no console password or API token is set: then nobody can log in."""
        return bool(self._passwords)

    def check_password(self, given: str) -> bool:
        ok = False
        for p in self._passwords:  # every one compared: the time does not say which matched
            ok |= hmac.compare_digest(given.encode(), p)
        return ok

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def new(self) -> tuple[Session, str]:
        """A new session and its cookie value."""
        s = Session(secrets.token_urlsafe(18), time.time() + self.max_age_s)
        payload = json.dumps({"sid": s.sid, "exp": int(s.expires)}, separators=(",", ":")).encode()
        return s, f"{_b64(payload)}.{self._sign(payload)}"

    def read(self, request: Request) -> Session | None:
        """The request's valid session, or None (no cookie, bad signature, expired, logged out)."""
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


def same_origin(request: Request) -> bool:
    """A POST must name our own origin (Origin, or failing that Referer); a request naming neither
    is refused: every browser sends Origin on a form POST."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    return referer is not None and (referer == own or referer.startswith(own + "/"))
