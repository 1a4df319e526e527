"""Plain-HTTP helpers for talking to the sandbox in tests (consent, full page walks).

Deliberately minimal and independent of fleetlake's connectors, so sandbox tests check the
fake APIs themselves rather than our client code.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

REDIRECT = "http://127.0.0.1:9/callback"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def authorize(client: httpx.Client, base_url: str, path: str, client_id: str, fleet: str | None = None,
              state: str = "st-1") -> dict[str, list[str]]:
    params = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "state": state}
    if fleet:
        params["fleet"] = fleet
    r = client.get(f"{base_url}{path}", params=params)
    assert r.status_code == 302, r.text
    return parse_qs(urlparse(r.headers["location"]).query)


def samsara_token(client: httpx.Client, ep: Any, **form: str) -> httpx.Response:
    basic = base64.b64encode(f"{ep.client_id}:{ep.client_secret}".encode()).decode()
    return client.post(f"{ep.base_url}/oauth2/token", headers={"Authorization": f"Basic {basic}"}, data=form)


def samsara_consent(client: httpx.Client, ep: Any, fleet: str | None = None) -> dict[str, Any]:
    code = authorize(client, ep.base_url, "/oauth2/authorize", ep.client_id, fleet)["code"][0]
    r = samsara_token(client, ep, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert r.status_code == 200, r.text
    return r.json()


def motive_token(client: httpx.Client, ep: Any, **form: str) -> httpx.Response:
    return client.post(f"{ep.base_url}/oauth/token",
                       data={"client_id": ep.client_id, "client_secret": ep.client_secret, **form})


def motive_consent(client: httpx.Client, ep: Any, fleet: str | None = None) -> dict[str, Any]:
    code = authorize(client, ep.base_url, "/oauth/authorize", ep.client_id, fleet)["code"][0]
    r = motive_token(client, ep, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def samsara_pages(client: httpx.Client, base_url: str, headers: dict[str, str], start: str, end: str,
                  **params: str) -> list[dict[str, Any]]:
    """Every page of a GPS history query, following cursors."""
    pages = []
    after = None
    for _ in range(100_000):
        q = {"types": "gps", "startTime": start, "endTime": end, **params, **({"after": after} if after else {})}
        r = client.get(f"{base_url}/fleet/vehicles/stats/history", params=q, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        if not page["pagination"]["hasNextPage"]:
            return pages
        after = page["pagination"]["endCursor"]
    raise AssertionError("pagination did not end")


def gps_records(pages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(v["id"], p) for page in pages for v in page["data"] for p in v["gps"]]
