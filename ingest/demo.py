"""`fleetlake demo`: the main job on embedded defaults.

Until the pullers, partitions and flows land, the demo consents both sandbox fleets through the
real OAuth flow and pulls their most recent day of GPS history over HTTP.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlparse

import httpx

from connectors.sandbox.server import SandboxServer
from connectors.sandbox.world import SandboxConfig

REDIRECT = "http://127.0.0.1:9/oauth/callback"



def run_demo(config: SandboxConfig) -> int:
    with SandboxServer(config) as server:
        now = server.world.clock.now_ms()
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 86400))
        end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000))
        for fleet in config.fleets:
            ep = server.endpoint(fleet.tsp)
            with httpx.Client(timeout=30) as client:
                if fleet.tsp == "samsara":
                    r = client.get(f"{ep.base_url}/oauth2/authorize", params={
                        "client_id": ep.client_id, "redirect_uri": REDIRECT, "response_type": "code",
                        "state": "demo", "fleet": fleet.spec.fleet_id})
                    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
                    basic = base64.b64encode(f"{ep.client_id}:{ep.client_secret}".encode()).decode()
                    tok = client.post(f"{ep.base_url}/oauth2/token", headers={"Authorization": f"Basic {basic}"},
                                      data={"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT}).json()
                    headers = {"Authorization": f"Bearer {tok['access_token']}"}
                    n, after = 0, None
                    while True:
                        params = {"types": "gps", "startTime": start, "endTime": end, **({"after": after} if after else {})}
                        page = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", params=params,
                                          headers=headers).json()
                        n += sum(len(v["gps"]) for v in page["data"])
                        if not page["pagination"]["hasNextPage"]:
                            break
                        after = page["pagination"]["endCursor"]
                else:
                    r = client.get(f"{ep.base_url}/oauth/authorize", params={
                        "client_id": ep.client_id, "redirect_uri": REDIRECT, "response_type": "code",
                        "state": "demo", "fleet": fleet.spec.fleet_id})
                    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
                    tok = client.post(f"{ep.base_url}/oauth/token", data={
                        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                        "client_id": ep.client_id, "client_secret": ep.client_secret}).json()
                    headers = {"Authorization": f"Bearer {tok['access_token']}"}
                    n = 0
                    vehicles = client.get(f"{ep.base_url}/v1/vehicles", headers=headers).json()["vehicles"]
                    for item in vehicles:
                        vid = item["vehicle"]["id"]
                        body = client.get(f"{ep.base_url}/v3/vehicle_locations/{vid}", headers=headers,
                                          params={"start_date": start[:10], "end_date": end[:10]}).json()
                        n += len(body["vehicle_locations"])
            print(f"{fleet.tsp:8s} {fleet.spec.fleet_id:20s} consented, pulled {n} pings of the last day")
    return 0
