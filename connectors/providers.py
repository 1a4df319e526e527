"""Where each TSP's OAuth and API live, and how a fleet's connector is put together."""

from __future__ import annotations

import httpx

from connectors.http import RetryPolicy, Timeouts, TspHttp
from connectors.motive import MotiveConnector
from connectors.oauth import OAuthProvider
from connectors.samsara import SamsaraConnector
from connectors.throttle import Throttle

# Public production endpoints; the sandbox (and tests) pass their own base URLs.
SAMSARA_API = "https://api.samsara.com"
MOTIVE_API = "https://api.gomotive.com"
MOTIVE_AUTH = "https://gomotive.com"

_PATHS = {"samsara": ("/oauth2/authorize", "/oauth2/token", "basic"),
          "motive": ("/oauth/authorize", "/oauth/token", "body")}


def oauth_provider(tsp: str, auth_base_url: str, client_id: str, client_secret: str, redirect_uri: str,
                   scope: str | None = None) -> OAuthProvider:
    authorize, token, client_auth = _PATHS[tsp]
    base = auth_base_url.rstrip("/")
    return OAuthProvider(tsp, base + authorize, base + token, client_id, client_secret, redirect_uri, client_auth,
                         scope)


def open_connector(tsp: str, fleet_id: str, api_base_url: str, auth: httpx.Auth, rate_limit_per_s: float,
                   policy: RetryPolicy = RetryPolicy(), timeouts: Timeouts = Timeouts()
                   ) -> SamsaraConnector | MotiveConnector:
    http = TspHttp(tsp, api_base_url.rstrip("/"), auth, Throttle(rate_limit_per_s), policy, timeouts)
    if tsp == "samsara":
        return SamsaraConnector(http, fleet_id)
    if tsp == "motive":
        return MotiveConnector(http, fleet_id)
    raise ValueError(f"unknown TSP {tsp!r}")
