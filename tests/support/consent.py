"""A fleet's consent through the sandbox, which approves at once: the consent link, its redirect,
then the callback's work (code and state) done by the app as the daemon's callback does it."""

from __future__ import annotations

import httpx

from ingest.fleets.onboarding import Onboarding
from tests.support import loopback


def redirect_of(consent_url: str, sandbox_fleet: str | None = None) -> httpx.URL:
    """Where the sandbox's authorize page sends the browser back (`fleet` picks the sandbox fleet that logs in)."""
    url = consent_url + (f"&fleet={sandbox_fleet}" if sandbox_fleet else "")
    return httpx.URL(loopback.get(url).headers["location"])


def consent(onboarding: Onboarding, tsp: str, fleet_id: str, sandbox_fleet: str | None = None,
            relink: bool = False) -> str:
    q = redirect_of(onboarding.consent_url(tsp, fleet_id, relink), sandbox_fleet).params
    return onboarding.complete_consent(tsp, q["code"], q["state"])
