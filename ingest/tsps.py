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
    url = settings.resolved_apps_url
    if url:
        try:
            apps = httpx.get(url, timeout=10).json()
            out = {}
            for tsp in TSPS:
                app = apps[tsp]
                register_secret(app["client_secret"])
                out[tsp] = TspEndpoint(tsp, app["api_url"], app["auth_url"], app["client_id"], app["client_secret"],
                                       getattr(settings, f"{tsp}_rate_per_s"))
            return out
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            raise ConfigError("FLEETLAKE_APPS_URL", f"no app credentials served at {url}: {type(e).__name__}") from None
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
