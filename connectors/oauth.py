"""OAuth2 for the TSPs: consent URL with a signed state, code exchange, refresh, encrypted storage.

- `state` is an HMAC-signed, expiring token naming the TSP, so a callback we did not start is refused.
  It carries a random nonce that the caller records when the state is used: a callback URL seen
  in a browser history or a proxy log cannot be replayed with a fresh code. It also says whether
  the operator asked to re-link an already connected fleet, so that a consent link can never
  silently replace a live fleet's tokens.
- Expiry is measured from when the token request was *sent*, and tokens are refreshed
  `refresh_margin_s` before it, so a slow token response never leaves us with a dead token.
- A rotated refresh token is persisted (encrypted) before the new access token is used: if the
  process dies right after a refresh, the next one still holds the only valid refresh token.
- One refresh at a time per fleet: a lock, and a re-check after taking it, so ten threads that
  see an expired token cause one refresh, not ten (which rotation would turn into nine errors).
- `BearerAuth` is an httpx.Auth flow: a 401 gets one refresh and one replay, no more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Generator, Protocol
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet, InvalidToken

from common import names
from common.errors import AuthError, ConfigError, ConsentRevoked
from connectors.http import HeaderAuth, tls_context
from connectors.redact import register_secret


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float  # epoch seconds, measured from when the token request was sent

    def to_json(self) -> bytes:
        return json.dumps({"a": self.access_token, "r": self.refresh_token, "e": self.expires_at}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenSet:
        d = json.loads(raw)
        return cls(d["a"], d["r"], float(d["e"]))


@dataclass(frozen=True)
class OAuthProvider:
    tsp: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    client_auth: str  # "basic" (Samsara) or "body" (Motive)
    scope: str | None = None
    revoke_url: str | None = None  # RFC 7009 revocation, where the TSP offers it


class Vault:
    """Encrypts token sets with a Fernet key (AES-128-CBC + HMAC-SHA256).

    The daemon gives each fleet a Vault on the fleet's own data key (partitions/keyring.py), so
    that destroying that key makes every stored copy of the fleet's tokens unreadable; `key_name`
    says which key it is in errors (never the key itself).
    """

    def __init__(self, key: str, key_name: str = "FLEETLAKE_TOKEN_KEY") -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError):
            raise ConfigError("FLEETLAKE_TOKEN_KEY", "must be a Fernet key: 32 url-safe base64-encoded bytes "
                                                     "(python -c 'from cryptography.fernet import Fernet; "
                                                     "print(Fernet.generate_key().decode())')") from None
        self.key_name = key_name
        register_secret(key if isinstance(key, str) else key.decode())  # a key is a secret like a token

    def seal(self, tokens: TokenSet) -> bytes:
        return self._fernet.encrypt(tokens.to_json())

    def open(self, blob: bytes) -> TokenSet:
        try:
            tokens = TokenSet.from_json(self._fernet.decrypt(blob))
        except InvalidToken:
            raise AuthError("vault", f"stored tokens cannot be decrypted with {self.key_name}") from None
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        return tokens


class CredentialStore(Protocol):
    def load_credentials(self, fleet_id: str) -> bytes | None: ...
    def save_credentials(self, fleet_id: str, blob: bytes) -> None: ...


@dataclass(frozen=True)
class ConsentState:
    """What a verified `state` says: which consent it belongs to. Single use: the nonce is recorded."""
    tsp: str
    fleet_id: str
    expires_at: int  # epoch seconds
    nonce: str
    relink: bool  # the operator asked to replace the tokens of a fleet already connected


_NEW, _RELINK = "n", "r"


class StateSigner:
    """Signed, expiring, single-use OAuth `state` values: `tsp.fleet.expiry.nonce.mode.mac`."""

    def __init__(self, key: bytes, ttl_s: int = 900) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def make(self, tsp: str, fleet_id: str = "", relink: bool = False) -> str:
        """A state for one consent; it carries the fleet id the operator chose for this customer."""
        if fleet_id:
            names.fleet_id(fleet_id)  # no dots: they separate the fields
        payload = (f"{tsp}.{fleet_id}.{int(time.time()) + self.ttl_s}.{secrets.token_urlsafe(16)}."
                   f"{_RELINK if relink else _NEW}")
        return f"{payload}.{self._mac(payload)}"

    def verify(self, state: str | None, tsp: str) -> ConsentState:
        """What the state was issued for, or AuthError. It does not know whether the state was used:
        the caller records `nonce` and refuses a second use."""
        parts = (state or "").rsplit(".", 1)
        if len(parts) != 2 or not hmac.compare_digest(self._mac(parts[0]), parts[1]):
            raise AuthError(tsp, "OAuth state is missing or was not issued by this fleetlake")
        fields_ = parts[0].split(".")
        # Signed but unparseable can only be a state from an older fleetlake: refused, not a crash.
        if len(fields_) != 5 or not fields_[2].isdigit() or fields_[4] not in (_NEW, _RELINK) or not fields_[3]:
            raise AuthError(tsp, "OAuth state is malformed; start the consent again")
        if fields_[0] != tsp:
            raise AuthError(tsp, "OAuth state was issued for another TSP")
        if int(fields_[2]) < time.time():
            raise AuthError(tsp, "OAuth state has expired; start the consent again")
        return ConsentState(fields_[0], fields_[1], int(fields_[2]), fields_[3], fields_[4] == _RELINK)

    def _mac(self, payload: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:18]).decode()


class OAuthClient:
    def __init__(self, provider: OAuthProvider, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.p = provider
        self._http = httpx.Client(timeout=timeout_s, transport=transport, verify=tls_context())
        register_secret(provider.client_secret)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def consent_url(self, state: str, **extra: str) -> str:
        params = {"client_id": self.p.client_id, "redirect_uri": self.p.redirect_uri, "response_type": "code",
                  "state": state, **({"scope": self.p.scope} if self.p.scope else {}), **extra}
        return f"{self.p.authorize_url}?{urlencode(params)}"

    def exchange(self, code: str) -> TokenSet:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": self.p.redirect_uri})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, token: str, hint: str = "refresh_token") -> bool:
        """End the grant `token` belongs to (RFC 7009); False when the TSP offers no revocation.

        A 200 also answers a token the TSP no longer knows (the fleet revoked it already), so only
        an unreachable endpoint or an error status is an AuthError.
        """
        if not self.p.revoke_url:
            return False
        form, auth = self._client_auth({"token": token, "token_type_hint": hint})
        try:
            r = self._http.post(self.p.revoke_url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TransportError as e:
            raise AuthError(self.p.tsp, f"revocation endpoint unreachable ({type(e).__name__})") from None
        if r.status_code != 200:
            raise AuthError(self.p.tsp, f"token revocation failed ({r.status_code})")
        return True

    def _client_auth(self, form: dict[str, str]) -> tuple[dict[str, str], tuple[str, str] | None]:
        if self.p.client_auth == "basic":
            return form, (self.p.client_id, self.p.client_secret)
        return {**form, "client_id": self.p.client_id, "client_secret": self.p.client_secret}, None

    def _token(self, form: dict[str, str]) -> TokenSet:
        form, auth = self._client_auth(form)
        sent = time.time()
        try:
            r = self._http.post(self.p.token_url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TransportError as e:
            raise AuthError(self.p.tsp, f"token endpoint unreachable ({type(e).__name__})") from None
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            if error == "invalid_grant":
                raise ConsentRevoked(self.p.tsp, "the grant was refused (invalid_grant): the fleet must consent again")
            raise AuthError(self.p.tsp, f"token request failed ({r.status_code}, {error or 'no error code'})")
        try:
            tokens = TokenSet(str(body["access_token"]), body.get("refresh_token"),
                              sent + float(body.get("expires_in", 3600)))
        except (KeyError, TypeError, ValueError):
            raise AuthError(self.p.tsp, "token response lacks access_token or has a bad expires_in") from None
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        return tokens


class FleetCredentials:
    """The live tokens of one fleet, refreshed safely across threads and persisted encrypted."""

    def __init__(self, fleet_id: str, client: OAuthClient, vault: Vault, store: CredentialStore,
                 refresh_margin_s: float = 300.0) -> None:
        self.fleet_id = fleet_id
        self.client = client
        self.vault = vault
        self.store = store
        self.refresh_margin_s = refresh_margin_s
        self._lock = threading.Lock()
        blob = store.load_credentials(fleet_id)
        if blob is None:
            raise AuthError(client.p.tsp, f"fleet {fleet_id} has no stored credentials; connect it first")
        self._tokens = vault.open(blob)

    @classmethod
    def connect(cls, fleet_id: str, client: OAuthClient, vault: Vault, store: CredentialStore, code: str,
                refresh_margin_s: float = 300.0) -> FleetCredentials:
        tokens = client.exchange(code)
        store.save_credentials(fleet_id, vault.seal(tokens))
        return cls(fleet_id, client, vault, store, refresh_margin_s)

    def access_token(self) -> str:
        tokens = self._tokens
        if tokens.expires_at - self.refresh_margin_s > time.time():
            return tokens.access_token
        return self._refresh(stale=tokens.access_token)

    def refresh_after_401(self, rejected: str) -> str:
        return self._refresh(stale=rejected, force=True)

    def _refresh(self, stale: str, force: bool = False) -> str:
        with self._lock:
            current = self._tokens
            # Another thread refreshed while we waited for the lock: use its token.
            if current.access_token != stale and (force or current.expires_at - self.refresh_margin_s > time.time()):
                return current.access_token
            if not current.refresh_token:
                raise AuthError(self.client.p.tsp, f"fleet {self.fleet_id}: token expired and no refresh token")
            fresh = self.client.refresh(current.refresh_token)
            if fresh.refresh_token is None:  # providers that do not rotate keep the old one valid
                fresh = TokenSet(fresh.access_token, current.refresh_token, fresh.expires_at)
            self.store.save_credentials(self.fleet_id, self.vault.seal(fresh))  # persist before use
            self._tokens = fresh
            return fresh.access_token


class BearerAuth(HeaderAuth):
    def __init__(self, credentials: FleetCredentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.credentials.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # One refresh and one replay. A second 401 means the consent is gone.
            fresh = self.credentials.refresh_after_401(token)
            request.headers["Authorization"] = f"Bearer {fresh}"
            response = yield request
            if response.status_code == 401:
                raise ConsentRevoked(self.credentials.client.p.tsp,
                                     f"fleet {self.credentials.fleet_id}: access refused after a token refresh")
