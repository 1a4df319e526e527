"""Pulling from the sandbox into month partitions, end to end over HTTP.

The sandbox runs as its own process. Reported (medians over rounds where repeated):
  - end to end: pings/s from consent-ready to committed partitions, with the sandbox's rate
    limit out of reach; first on a cold sandbox (it generates and renders every page), then
    warm (pages cached), so the puller's own rate shows;
  - decode + normalise: CPU microseconds per ping, against the floor of the typed msgspec
    decode alone of the same page bodies;
  - rate limit: at the sandbox's default 50 requests/s per token, the share of that limit the
    puller used, and the share of its requests answered 429.

    python bench/bench_pull.py [--vehicles 8] [--days 14] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import msgspec
from cryptography.fernet import Fernet

from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, Vault
from connectors.providers import oauth_provider, open_connector
from connectors.samsara import SamsaraConnector, _StatsPage
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
REDIRECT = "http://127.0.0.1:9/cb"


def sandbox(vehicles: int, days: int, rate: float) -> tuple[subprocess.Popen, dict]:
    months = max(1, days // 28 + 1)
    p = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--vehicles", str(vehicles),
                          "--ping-interval", "5", "--history-months", str(months), "--now", NOW.isoformat(),
                          "--samsara-rate", str(rate)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return p, json.loads(p.stdout.readline())


def connector(info: dict, manifest: Manifest, rate: float) -> SamsaraConnector:
    ep = info["samsara"]
    client = OAuthClient(oauth_provider("samsara", ep["base_url"], ep["client_id"], ep["client_secret"], REDIRECT))
    r = httpx.get(client.consent_url("bench"))
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    creds = FleetCredentials.connect("acme-freight", client, Vault(Fernet.generate_key().decode()), manifest, code)
    return open_connector("samsara", "acme-freight", ep["base_url"], BearerAuth(creds), rate)  # type: ignore[return-value]


def pull_once(info: dict, days: int, rate: float, workers: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
        c = connector(info, m, rate)
        start = int((NOW - timedelta(days=days)).timestamp() * 1000)
        t0 = time.perf_counter()
        report = pull_fleet(c, LocalStore(Path(d) / "store"), m, "acme-freight", start, int(NOW.timestamp() * 1000),
                            PullOptions(work_dir=Path(d), workers=workers))
        wall = time.perf_counter() - t0
        return {"pings": report.rows_accepted, "wall": wall, "requests": c.http.requests,
                "throttled": c.http.throttled}


def decode_costs(info: dict, days: int, rounds: int) -> tuple[float, float, int]:
    """(floor us/ping, decode+normalise us/ping, pings) over the same captured page bodies."""
    with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
        c = connector(info, m, 1e6)
        bodies: list[bytes] = []
        start = NOW - timedelta(days=days)
        for v in c.vehicles():
            after = None
            while True:
                params = {"types": "gps,gpsOdometerMeters", "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "endTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "vehicleIds": v.vehicle_id, "limit": 512}
                r = c.http.get("/fleet/vehicles/stats/history", {**params, **({"after": after} if after else {})})
                bodies.append(r.content)
                page = msgspec.json.decode(r.content)
                if not page["pagination"]["hasNextPage"]:
                    break
                after = page["pagination"]["endCursor"]
    decoder = msgspec.json.Decoder(_StatsPage)
    pings = sum(len(v.gps) for b in bodies for v in decoder.decode(b).data)
    floor, full = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        for b in bodies:
            decoder.decode(b)
        floor.append((time.process_time() - t0) / pings * 1e6)
        t0 = time.process_time()
        for b in bodies:
            for v in decoder.decode(b).data:
                if v.gps:
                    c._normalise(v, salvaged=False, decorated=False)
        full.append((time.process_time() - t0) / pings * 1e6)
    return statistics.median(floor), statistics.median(full), pings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=8)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    cold, warm = [], []
    for rnd in range(a.rounds):
        proc, info = sandbox(a.vehicles, a.days, 1e6)
        try:
            c = pull_once(info, a.days, 1e6)
            w = pull_once(info, a.days, 1e6)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        cold.append(c["pings"] / c["wall"])
        warm.append(w["pings"] / w["wall"])
        print(f"round {rnd + 1}: {c['pings']:,} pings  cold sandbox {cold[-1]:,.0f}/s  warm sandbox {warm[-1]:,.0f}/s",
              flush=True)

    proc, info = sandbox(a.vehicles, a.days, 1e6)
    try:
        floor_us, full_us, n = decode_costs(info, a.days, a.rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    limit = 50.0
    proc, info = sandbox(4, 14, limit)
    try:
        pull_once(info, 14, 1e6, workers=1)  # warm the sandbox's page cache: measure the puller, not rendering
        r = pull_once(info, 14, limit, workers=4)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    used = r["requests"] / r["wall"] / limit

    print(f"\nend to end into partitions ({a.vehicles} vehicles x {a.days} days at 5 s, 4 workers, median of "
          f"{a.rounds}): cold sandbox {statistics.median(cold):,.0f} pings/s, warm sandbox "
          f"{statistics.median(warm):,.0f} pings/s")
    print(f"decode + normalise: {full_us:.2f} us/ping vs typed decode alone {floor_us:.2f} us/ping "
          f"({full_us / floor_us:.1f}x the floor; {n:,} pings)")
    print(f"rate limit {limit:.0f} req/s: {r['requests']} requests in {r['wall']:.1f}s = {used:.0%} of the limit used, "
          f"{r['throttled']} answered 429 ({r['throttled'] / max(1, r['requests']):.1%})")


if __name__ == "__main__":
    main()
