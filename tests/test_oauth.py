"""OAuth: consent URL and state, exchange, refresh rotation, single refresh, 401 replay, storage."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import respx
from cryptography.fernet import Fernet

from common.errors import AuthError, ConfigError, ConsentRevoked
from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, OAuthProvider, StateSigner, TokenSet, Vault
from connectors.redact import ScrubSecrets, redact_url

TOKEN_URL = "https://tsp.test/oauth2/token"


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.saves = 0

    def load_credentials(self, fleet_id: str) -> bytes | None:
        return self.blobs.get(fleet_id)

    def save_credentials(self, fleet_id: str, blob: bytes) -> None:
        self.saves += 1
        self.blobs[fleet_id] = blob


def provider(client_auth: str = "basic") -> OAuthProvider:
    return OAuthProvider("samsara", "https://tsp.test/oauth2/authorize", TOKEN_URL, "cid", "client-secret-xyz",
                         "http://127.0.0.1:8080/oauth/samsara/callback", client_auth)


def grant(n: int, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": f"access-token-{n:04d}", "refresh_token": f"refresh-token-{n:04d}",
                                     "expires_in": expires_in, "token_type": "bearer"})


@pytest.fixture
def vault() -> Vault:
    return Vault(Fernet.generate_key().decode())


def test_consent_url_and_signed_state() -> None:
    signer = StateSigner(b"k" * 32)
    state = signer.make("samsara")
    url = OAuthClient(provider()).consent_url(state)
    assert url.startswith("https://tsp.test/oauth2/authorize?") and "client_id=cid" in url and "state=" in url
    signer.verify(state, "samsara")
    with pytest.raises(AuthError, match="another TSP"):
        signer.verify(state, "motive")
    with pytest.raises(AuthError, match="not issued"):
        signer.verify(state[:-2] + "xx", "samsara")
    with pytest.raises(AuthError, match="expired"):
        StateSigner(b"k" * 32, ttl_s=-1).verify(StateSigner(b"k" * 32, ttl_s=-1).make("samsara"), "samsara")


def test_a_state_carries_a_fresh_nonce_and_whether_a_relink_was_asked() -> None:
    signer = StateSigner(b"k" * 32)
    a, b = signer.verify(signer.make("samsara", "f1"), "samsara"), signer.verify(signer.make("samsara", "f1"), "samsara")
    assert a.fleet_id == "f1" and a.nonce != b.nonce and len(a.nonce) >= 16 and not a.relink
    assert signer.verify(signer.make("motive", "f1", relink=True), "motive").relink
    # A signed state whose fields do not parse (an older format, a bad expiry) is refused, not a crash.
    for payload in ("samsara.f1.later.n0nce.n", "samsara.f1.123", "samsara.f1.99999999999.n0nce.x"):
        with pytest.raises(AuthError, match="malformed"):
            signer.verify(f"{payload}.{signer._mac(payload)}", "samsara")


@respx.mock
@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_code_exchange_uses_the_tsps_client_authentication(client_auth: str, vault: Vault) -> None:
    route = respx.post(TOKEN_URL).mock(return_value=grant(1))
    store = MemoryStore()
    creds = FleetCredentials.connect("fleet-a", OAuthClient(provider(client_auth)), vault, store, "the-code")
    req = route.calls[0].request
    body = req.content.decode()
    assert "grant_type=authorization_code" in body and "code=the-code" in body
    if client_auth == "basic":
        assert req.headers["authorization"].startswith("Basic ") and "client_secret" not in body
    else:
        assert "client_secret=client-secret-xyz" in body and "authorization" not in req.headers
    assert creds.access_token() == "access-token-0001"
    assert b"access-token-0001" not in store.blobs["fleet-a"] and b"refresh-token" not in store.blobs["fleet-a"]


@respx.mock
def test_refresh_rotates_and_persists_before_use(vault: Vault) -> None:
    route = respx.post(TOKEN_URL).mock(side_effect=[grant(1, expires_in=10), grant(2)])
    store = MemoryStore()
    creds = FleetCredentials.connect("fleet-a", OAuthClient(provider()), vault, store, "c", refresh_margin_s=60)
    assert creds.access_token() == "access-token-0002"  # within the margin: refreshed first
    assert "refresh_token=refresh-token-0001" in route.calls[1].request.content.decode()
    assert vault.open(store.blobs["fleet-a"]).refresh_token == "refresh-token-0002"
    # A restarted process reads the rotated token, not the spent one.
    again = FleetCredentials("fleet-a", OAuthClient(provider()), vault, store)
    assert again.access_token() == "access-token-0002"


@respx.mock
def test_concurrent_expiry_causes_one_refresh(vault: Vault) -> None:
    store = MemoryStore()
    store.blobs["fleet-a"] = vault.seal(TokenSet("access-token-0001", "refresh-token-0001", time.time() - 1))

    def slow_grant(request: httpx.Request) -> httpx.Response:
        time.sleep(0.1)
        return grant(2)

    route = respx.post(TOKEN_URL).mock(side_effect=slow_grant)
    creds = FleetCredentials("fleet-a", OAuthClient(provider()), vault, store)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(creds.access_token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert route.call_count == 1 and set(results) == {"access-token-0002"}


@respx.mock
def test_invalid_grant_is_consent_revoked(vault: Vault) -> None:
    store = MemoryStore()
    store.blobs["fleet-a"] = vault.seal(TokenSet("access-token-0001", "refresh-token-0001", time.time() - 1))
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    creds = FleetCredentials("fleet-a", OAuthClient(provider()), vault, store)
    with pytest.raises(ConsentRevoked, match="consent again"):
        creds.access_token()


@respx.mock
def test_a_401_gets_one_refresh_and_one_replay(vault: Vault) -> None:
    store = MemoryStore()
    store.blobs["fleet-a"] = vault.seal(TokenSet("access-token-0001", "refresh-token-0001", time.time() + 3600))
    respx.post(TOKEN_URL).mock(return_value=grant(2))
    api = respx.get("https://tsp.test/fleet/vehicles").mock(side_effect=[
        httpx.Response(401, json={"message": "expired"}), httpx.Response(200, json={"data": []})])
    creds = FleetCredentials("fleet-a", OAuthClient(provider()), vault, store)
    with httpx.Client(auth=BearerAuth(creds)) as c:
        assert c.get("https://tsp.test/fleet/vehicles").status_code == 200
    assert [r.request.headers["authorization"] for r in api.calls] == ["Bearer access-token-0001",
                                                                       "Bearer access-token-0002"]
    api.mock(return_value=httpx.Response(401))
    with httpx.Client(auth=BearerAuth(creds)) as c, pytest.raises(ConsentRevoked):
        c.get("https://tsp.test/fleet/vehicles")


def test_vault_key_errors_name_the_setting(vault: Vault) -> None:
    with pytest.raises(ConfigError, match="FLEETLAKE_TOKEN_KEY"):
        Vault("not-a-key")
    sealed = vault.seal(TokenSet("a" * 20, None, 0))
    with pytest.raises(AuthError, match="cannot be decrypted"):
        Vault(Fernet.generate_key().decode()).open(sealed)


def test_tokens_are_scrubbed_from_logs_and_urls(caplog: pytest.LogCaptureFixture) -> None:
    from connectors.redact import register_secret

    register_secret("access-token-9999")
    logger = logging.getLogger("fleetlake.test")
    caplog.handler.addFilter(ScrubSecrets())
    logger.warning("calling with %s", "Bearer access-token-9999")
    assert "access-token-9999" not in caplog.text and "REDACTED" in caplog.text
    url = redact_url("https://u:p@tsp.test/cb?code=abc&state=s1&limit=5&refresh_token=r")
    assert "abc" not in url and "s1" not in url and "u:p" not in url and "limit=5" in url
    assert "access-token" not in repr(TokenSet("access-token-9999", "r" * 10, 0))
