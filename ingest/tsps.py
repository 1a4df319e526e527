"""Where each TSP is and how to talk to it: real APIs from settings, or a sandbox's."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from common.errors import ConfigError
from connectors.oauth import OAuthClient
from connectors.providers import oauth_provider
from connectors.redact import register_secret
from ingest.settings import TSPS, Settings


@dataclass(frozen=True)
class TspEndpoint:
    tsp: str
    api_url: str
    auth_url: str
    client_id: str
    client_secret: str
    rate_per_s: float

    def __repr__(self) -> str:  # never print the secret
        return f"TspEndpoint({self.tsp!r}, api_url={self.api_url!r})"


def endpoints(settings: Settings) -> dict[str, TspEndpoint]:
    """The TSPs this daemon can consent fleets on (those with OAuth app credentials)."""
    if settings.sandbox_url:
        try:
            apps = httpx.get(f"{settings.sandbox_url}/_sandbox/apps", timeout=10).json()
        except (httpx.HTTPError, ValueError) as e:
            raise ConfigError("FLEETLAKE_SANDBOX_URL", f"no sandbox answers at {settings.sandbox_url}: {e}") from None
        out = {}
        for tsp in TSPS:
            register_secret(apps[tsp]["client_secret"])
            rate = getattr(settings, f"{tsp}_rate_per_s")
            out[tsp] = TspEndpoint(tsp, f"{settings.sandbox_url}/{tsp}", f"{settings.sandbox_url}/{tsp}",
                                   apps[tsp]["client_id"], apps[tsp]["client_secret"], rate)
        return out
    out = {}
    for tsp in TSPS:
        cid = getattr(settings, f"{tsp}_client_id")
        secret = getattr(settings, f"{tsp}_client_secret")
        if cid and secret:
            out[tsp] = TspEndpoint(tsp, getattr(settings, f"{tsp}_api_url"), getattr(settings, f"{tsp}_auth_url"),
                                   cid, secret.get_secret_value(), getattr(settings, f"{tsp}_rate_per_s"))
        elif cid or secret:
            missing = f"FLEETLAKE_{tsp.upper()}_CLIENT_{'SECRET' if cid else 'ID'}"
            raise ConfigError(missing, f"is needed together with the other {tsp} OAuth app setting")
    return out


def oauth_client(ep: TspEndpoint, settings: Settings) -> OAuthClient:
    return OAuthClient(oauth_provider(ep.tsp, ep.auth_url, ep.client_id, ep.client_secret,
                                      settings.redirect_uri(ep.tsp)))
