"""Serving rate of the fake Samsara GPS history API (pings/s), against the simulator's own rate.

The sandbox runs as its own process (`fleetlake sandbox`, one core); this process walks every
page of a GPS history window for all vehicles with a few concurrent clients and decodes each
page with a typed msgspec decoder. Reported, per round (medians over rounds):
  - floor: pings/s the simulator generates for the same window in-process (no HTTP)
  - cold:  pings/s served on a fresh server (generation + rendering + HTTP)
  - warm:  pings/s served on the second walk of the same window (rendered pages cached)

    python bench/bench_sandbox.py [--vehicles 20] [--days 7] [--rounds 3] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import msgspec

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


class _Point(msgspec.Struct):
    time: str


class _Vehicle(msgspec.Struct):
    id: str
    gps: list[_Point]


class _Pagination(msgspec.Struct):
    endCursor: str
    hasNextPage: bool


class _Page(msgspec.Struct):
    data: list[_Vehicle]
    pagination: _Pagination


def _start_server(vehicles: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--vehicles",
                             str(vehicles), "--ping-interval", "5", "--now", NOW.isoformat(),
                             "--samsara-rate", "1000000"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, json.loads(proc.stdout.readline())


def _walk(base: str, token: str, vehicle_ids: list[str], start: str, end: str) -> int:
    decoder = msgspec.json.Decoder(_Page)
    n = 0
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for vid in vehicle_ids:
            after = ""
            while True:
                params = {"types": "gps", "startTime": start, "endTime": end, "vehicleIds": vid}
                if after:
                    params["after"] = after
                r = client.get(f"{base}/fleet/vehicles/stats/history", params=params)
                r.raise_for_status()
                page = decoder.decode(r.content)
                n += sum(len(v.gps) for v in page.data)
                if not page.pagination.hasNextPage:
                    break
                after = page.pagination.endCursor
    return n


def _consent(info: dict) -> tuple[str, list[str]]:
    ep = info["samsara"]
    base = ep["base_url"]
    with httpx.Client(timeout=30) as c:
        r = c.get(f"{base}/oauth2/authorize", params={"client_id": ep["client_id"], "response_type": "code",
                                                       "redirect_uri": "http://127.0.0.1:9/cb", "state": "b"})
        code = httpx.URL(r.headers["location"]).params["code"]
        tok = c.post(f"{base}/oauth2/token", auth=(ep["client_id"], ep["client_secret"]),
                     data={"grant_type": "authorization_code", "code": code,
                           "redirect_uri": "http://127.0.0.1:9/cb"}).json()["access_token"]
        vids = [v["id"] for v in c.get(f"{base}/fleet/vehicles", headers={"Authorization": f"Bearer {tok}"}).json()[
            "data"]]
    return tok, vids


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_rate(info: dict, token: str, vids: list[str], start: str, end: str, clients: int,
                pid: int) -> tuple[int, float, float]:
    """(pings, wall seconds, server CPU seconds) of walking every page once."""
    groups = [vids[i::clients] for i in range(clients)]
    cpu0 = _cpu_seconds(pid)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        n = sum(pool.map(lambda g: _walk(info["samsara"]["base_url"], token, g, start, end), groups))
    return n, time.perf_counter() - t0, _cpu_seconds(pid) - cpu0


def _floor(vehicles: int, start: datetime, end: datetime) -> tuple[int, float]:
    from sandbox.simulator import FleetSimulator
    from sandbox.world import default_config

    spec = default_config(vehicles=vehicles, ping_interval_s=5, now=NOW).fleets[0].spec
    sim = FleetSimulator(spec)
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    t0 = time.perf_counter()
    n = sum(len(sim.pings(v, lo, hi)) for v in sim.vehicles)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=20)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    start_dt, end_dt = NOW - timedelta(days=a.days), NOW
    start, end = start_dt.strftime("%Y-%m-%dT%H:%M:%SZ"), end_dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    from geo.states import state_lookup

    state_lookup()  # build/load the state grid outside the timed parts
    floors, colds, warms, cold_cpu, warm_cpu = [], [], [], [], []
    for rnd in range(a.rounds):
        n_floor, t_floor = _floor(a.vehicles, start_dt, end_dt)
        proc, info = _start_server(a.vehicles)
        try:
            token, vids = _consent(info)
            n_cold, t_cold, c_cold = _serve_rate(info, token, vids, start, end, a.clients, proc.pid)
            n_warm, t_warm, c_warm = _serve_rate(info, token, vids, start, end, a.clients, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        assert n_cold == n_warm == n_floor, (n_cold, n_warm, n_floor)
        floors.append(n_floor / t_floor)
        colds.append(n_cold / t_cold)
        warms.append(n_warm / t_warm)
        cold_cpu.append(n_cold / c_cold)
        warm_cpu.append(n_warm / c_warm)
        print(f"round {rnd + 1}: {n_cold:,} pings  floor(sim only) {floors[-1]:,.0f}/s  "
              f"cold {colds[-1]:,.0f}/s wall, {cold_cpu[-1]:,.0f}/server-CPU-s  "
              f"warm {warms[-1]:,.0f}/s wall, {warm_cpu[-1]:,.0f}/server-CPU-s", flush=True)
    med = statistics.median
    f = med(floors)
    print(f"median over {a.rounds} rounds ({a.vehicles} vehicles x {a.days} days at 5 s, 512 per page, "
          f"{a.clients} client threads in a second process; 2 cores shared by client and server):")
    print(f"  simulator alone, in-process (floor): {f:,.0f} pings/s")
    print(f"  served cold: {med(colds):,.0f} pings/s wall ({med(colds) / f:.2f}x floor), "
          f"{med(cold_cpu):,.0f} pings per server CPU-second")
    print(f"  served warm: {med(warms):,.0f} pings/s wall ({med(warms) / f:.2f}x floor), "
          f"{med(warm_cpu):,.0f} pings per server CPU-second")


if __name__ == "__main__":
    main()
