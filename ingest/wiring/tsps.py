"""Where each TSP of the registry is and how to talk to it: from settings, or served app credentials."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from common.errors import ConfigError, UnknownTsp
from common.states import Tsp
from connectors.http import tls_context
from connectors.oauth import OAuthClient
from connectors.providers import TSPS, oauth_provider
from connectors.redact import register_secret
from ingest.wiring.settings import Settings


@dataclass(frozen=True)
class TspEndpoint:
    tsp: Tsp
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
        return _served(url, settings)
    out: dict[str, TspEndpoint] = {}
    for tsp in TSPS:
        cfg = settings.tsp(tsp)
        if cfg.client_id and cfg.client_secret:
            out[tsp] = TspEndpoint(tsp, cfg.api_url, cfg.auth_url, cfg.client_id,
                                   cfg.client_secret.get_secret_value(), cfg.rate_per_s)
        elif cfg.client_id or cfg.client_secret:
            missing = f"FLEETLAKE_{tsp.upper()}__CLIENT_{'SECRET' if cfg.client_id else 'ID'}"
            raise ConfigError(missing, f"is needed together with the other {tsp} OAuth app setting")
    return out


def _served(url: str, settings: Settings) -> dict[str, TspEndpoint]:
    """App credentials and TSP URLs served over HTTP (e.g. by a sandbox): {tsp: {client_id, ...}}."""
    try:
        apps = httpx.get(url, timeout=10, verify=tls_context()).json()
        out: dict[str, TspEndpoint] = {}
        for tsp in TSPS:
            app = apps[tsp]
            register_secret(app["client_secret"])
            out[tsp] = TspEndpoint(tsp, app["api_url"], app["auth_url"], app["client_id"], app["client_secret"],
                                   settings.tsp(tsp).rate_per_s)
        return out
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise ConfigError("FLEETLAKE_APPS_URL", f"no app credentials served at {url}: {type(e).__name__}") from None


def oauth_client(ep: TspEndpoint, settings: Settings) -> OAuthClient:
    return OAuthClient(oauth_provider(ep.tsp, ep.auth_url, ep.client_id, ep.client_secret,
                                      settings.redirect_uri(ep.tsp)))


def endpoint_of(endpoints: dict[str, TspEndpoint], tsp: str) -> TspEndpoint:
    """The endpoint of a configured TSP; UnknownTsp names the setting that configures it."""
    ep = endpoints.get(tsp)
    if ep is not None:
        return ep
    configured = ", ".join(sorted(endpoints)) or "none"
    if tsp not in TSPS:
        raise UnknownTsp(f"unknown TSP {tsp[:40]!r} (fleetlake speaks {', '.join(sorted(TSPS))}; "
                         f"configured here: {configured})")
    raise UnknownTsp(f"TSP {tsp!r} is not configured here (configured: {configured}): set "
                     f"FLEETLAKE_{tsp.upper()}__CLIENT_ID and FLEETLAKE_{tsp.upper()}__CLIENT_SECRET")
