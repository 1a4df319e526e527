"""The TSP registry: every telematics provider fleetlake speaks to, described once.

Each entry names the provider, its connector, how its OAuth app authenticates at the token
endpoint, its public production URLs and its published per-token rate limit. Settings, the
CLI's choices, the daemon's callback routes and connector construction all read this table,
so adding a TSP is one entry here plus its connector module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Literal

import httpx

from common.states import Tsp
from connectors.http import Limits, ResponseHook, RetryPolicy, Timeouts, TspHttp, tls_context
from connectors.motive import MotiveConnector
from connectors.oauth import OAuthProvider
from connectors.samsara import SamsaraConnector
from connectors.throttle import Throttle
from connectors.transport import LeanTransport

Connector = SamsaraConnector | MotiveConnector


@dataclass(frozen=True)
class TspSpec:
    name: Tsp
    connector: Callable[[TspHttp, str], Connector]  # (http, fleet id) -> connector
    authorize_path: str
    token_path: str
    client_auth: Literal["basic", "body"]  # how the app's id and secret reach the token endpoint
    api_url: str                           # production defaults; settings override them
    auth_url: str
    rate_per_s: float                      # requests per second per token, as the TSP publishes it
    # RFC 7009 token revocation, where the TSP offers it: Samsara's OAuth examples POST the refresh
    # token to /oauth2/revoke with the app's Basic auth. Motive documents no revocation endpoint, so
    # off-boarding can only destroy our copy of the tokens; the grant ends when the customer removes
    # the app on Motive's side (`disconnect` says where, for the off-boarding record).
    revoke_path: str | None = None
    # What the customer does to end the grant where we cannot revoke it (the operator passes it on).
    # Motive's help centre: customers "install, configure, and remove apps" in one place, the Motive
    # App Marketplace (helpcenter.gomotive.com, "Installing & Managing", article 31078889455901).
    disconnect: str | None = None
    # OAuth scopes the consent asks for, where the TSP takes them in the authorize request (Motive;
    # a Samsara app's scopes are set on the app itself). Drivers and hours of service need Motive's
    # `users.read`, `hos_logs.logs` and `hos_logs.hos_violation` (docs/sandbox.md).
    scopes: str | None = None


TSPS: dict[Tsp, TspSpec] = {
    Tsp.SAMSARA: TspSpec(Tsp.SAMSARA, SamsaraConnector, "/oauth2/authorize", "/oauth2/token", "basic",
                       "https://api.samsara.com", "https://api.samsara.com", 20.0, "/oauth2/revoke"),
    Tsp.MOTIVE: TspSpec(Tsp.MOTIVE, MotiveConnector, "/oauth/authorize", "/oauth/token", "body",
                      "https://api.gomotive.com", "https://gomotive.com", 10.0,
                      disconnect="a fleet admin removes (disconnects) fleetlake's app in their Motive account: "
                                 "Motive's App Marketplace is where customers install, configure and remove apps",
                      scopes="vehicles.read locations.read driver_performance_events.read users.read "
                             "hos_logs.logs hos_logs.hos_violation"),
}


def known_tsp(name: str) -> Tsp | None:
    """The TSP a name (from settings, a URL, a record) names, or None for one fleetlake does not speak."""
    try:
        return Tsp(name)
    except ValueError:
        return None


def tsp_spec(tsp: str) -> TspSpec:
    known = known_tsp(tsp)
    if known is None:
        raise ValueError(f"unknown TSP {tsp[:40]!r} (known: {', '.join(TSPS)})")
    spec = TSPS[known]
    return spec


def oauth_provider(tsp: str, auth_base_url: str, client_id: str, client_secret: str, redirect_uri: str,
                   scope: str | None = None) -> OAuthProvider:
    spec = tsp_spec(tsp)
    base = auth_base_url.rstrip("/")
    return OAuthProvider(tsp, base + spec.authorize_path, base + spec.token_path, client_id, client_secret,
                         redirect_uri, spec.client_auth, scope or spec.scopes,
                         base + spec.revoke_path if spec.revoke_path else None)


def open_connector(tsp: str, fleet_id: str, api_base_url: str, auth: httpx.Auth, rate_limit_per_s: float,
                   policy: RetryPolicy = RetryPolicy(), timeouts: Timeouts = Timeouts(),
                   on_response: ResponseHook | None = None, limits: Limits = Limits(),
                   stop: threading.Event | None = None) -> Connector:
    """A connector on its own client and its own throttle: each fleet token is paced on its own.

    Its requests go through the lean transport (connectors/transport.py): a third of httpx's own
    transport's CPU per page."""
    spec = tsp_spec(tsp)
    http = TspHttp(tsp, api_base_url.rstrip("/"), auth, Throttle(rate_limit_per_s), policy, timeouts,
                   transport=LeanTransport(tls_context()), on_response=on_response, limits=limits, stop=stop)
    return spec.connector(http, fleet_id)
