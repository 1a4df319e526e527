"""What record- and field-level tolerance costs, and what it saves, against the sandbox over HTTP.

Reported, per TSP, in one run against one sandbox process:
  - a faulted run (5xx, 429 storms, drops, duplicates, shuffles, junk records, numbers as strings)
    with every API quirk on: pings pulled, quarantined and nulled, beside a clean pull of the same
    history (which tests/test_quirks.py holds equal to the simulator's pings);
  - the pull rate (pings/s, end to end into committed partitions, warm sandbox, no faults or
    quirks) and the puller's CPU per ping (process time, all threads) of this checkout against
    an older one (default: the commit before the tolerance
    work), alternating rounds, medians and their ratio;
  - the older code on the quirks run: what it lands, or the error that stops it.

    python bench/bench_tolerance.py [--old-src DIR] [--vehicles 4] [--days 14] [--rounds 3]

`--old-src` is a plain export of the older tree (`git archive 034b6de | tar -x -C DIR`); the
pull itself runs in a subprocess with that tree first on PYTHONPATH, so both versions pull the
same pages from the same server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx

NOW = datetime(2026, 3, 15, tzinfo=timezone.utc)
FLEETS = {"samsara": "acme-freight", "motive": "bluebird-logistics"}
FAULTS = {"seed": 5, "error_5xx": 0.05, "storm_429": 0.05, "drop_mid_body": 0.03, "duplicate_across_pages": 0.3,
          "out_of_order": 0.3, "malformed": 0.5, "numbers_as_strings": 0.05}
HERE = Path(__file__).resolve().parent.parent


def worker(cfg: dict) -> None:
    """One pull in this process (whichever fleetlake is first on sys.path); prints a JSON line."""
    import tempfile
    import time
    from urllib.parse import parse_qs, urlparse

    from cryptography.fernet import Fernet

    from connectors.http import RetryPolicy
    from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, Vault
    from connectors.providers import oauth_provider, open_connector
    from ingest.pull.backfill import PullOptions, pull_fleet
    from partitions import Manifest
    from partitions.store import LocalStore

    tsp, fleet, ep = cfg["tsp"], FLEETS[cfg["tsp"]], cfg["endpoint"]
    with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
        client = OAuthClient(oauth_provider(tsp, ep["base_url"], ep["client_id"], ep["client_secret"],
                                            "http://127.0.0.1:9/cb"))
        r = httpx.get(client.consent_url("bench", fleet=fleet))
        code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
        creds = FleetCredentials.connect(fleet, client, Vault(Fernet.generate_key().decode()), m, code)
        policy = RetryPolicy(max_attempts=10, max_total_s=120, base_delay_s=0.01, max_delay_s=0.2,
                             max_retry_after_s=1.0)
        c = open_connector(tsp, fleet, ep["base_url"], BearerAuth(creds), 1e6, policy=policy)
        end = int(NOW.timestamp() * 1000)
        start = end - cfg["days"] * 86_400_000
        t0, c0 = time.perf_counter(), time.process_time()
        out: dict = {}
        try:
            rep = pull_fleet(c, LocalStore(Path(d) / "s"), m, fleet, start, end,
                             PullOptions(work_dir=Path(d), lookback_ms=0))
            committed = sum(p.rows for p in m.raw_partitions(fleet, "pings"))
            out = {"pings": rep.rows_accepted, "committed": committed, "quarantined": sum(rep.quarantined.values()),
                   "nulled": sum(getattr(rep, "nulled", {}).values()), "by_reason": {**rep.quarantined},
                   "nulled_by_reason": {**getattr(rep, "nulled", {})}}
        except Exception as e:  # noqa: BLE001 - reported: the old code's failure is a result
            out = {"error": f"{type(e).__name__}: {e}"[:300]}
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = time.process_time() - c0  # the puller's own CPU, all threads: steadier than wall
        print(json.dumps(out), flush=True)


def run_worker(src: Path, cfg: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)], cwd=src,
                       env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--old-src", type=Path, default=Path("/tmp/fleetlake-034b6de"))
    ap.add_argument("--vehicles", type=int, default=4)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.worker:
        worker(json.loads(a.worker))
        return

    p = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--vehicles", str(a.vehicles),
                          "--ping-interval", "5", "--history-months", "1", "--now", NOW.isoformat(),
                          "--samsara-rate", "1000000", "--motive-rate", "1000000"], stdout=subprocess.PIPE,
                         text=True, cwd=HERE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        info = json.loads(p.stdout.readline())
        base = info["samsara"]["base_url"].rsplit("/samsara", 1)[0]

        def setup(faults: dict, quirks: dict) -> None:
            for tsp, fleet in FLEETS.items():
                httpx.post(f"{base}/_sandbox/faults/{tsp}", json=faults).raise_for_status()
                httpx.post(f"{base}/_sandbox/quirks/{fleet}", json=quirks).raise_for_status()

        for tsp in FLEETS:
            cfg = {"tsp": tsp, "endpoint": info[tsp], "days": a.days}
            setup({}, {})
            clean = run_worker(HERE, cfg)  # also warms the page cache for the rate rounds
            setup(FAULTS, {**{"seed": 4}, **_realistic()})
            faulted = run_worker(HERE, cfg)
            old_quirks = run_worker(a.old_src, cfg)
            setup({}, {})
            run_worker(HERE, cfg)  # re-warm the sandbox's page cache after the faulted runs evicted it
            new_rate, old_rate, new_cpu, old_cpu = [], [], [], []
            for rnd in range(a.rounds):
                # Alternate who goes first, so neither always meets a cache the other warmed.
                pair = ((HERE, new_rate, new_cpu), (a.old_src, old_rate, old_cpu))
                for src, acc, cpu in (pair if rnd % 2 == 0 else pair[::-1]):
                    r = run_worker(src, cfg)
                    acc.append(r["pings"] / r["wall"] if "pings" in r else float("nan"))
                    cpu.append(r["cpu"] / r["pings"] * 1e6 if "pings" in r else float("nan"))
            print(f"\n{tsp}: {a.vehicles} vehicles x {a.days} days at 5 s; clean pull committed "
                  f"{clean.get('committed', 0):,} pings")
            print(f"  faulted + all quirks: committed {faulted.get('committed', 0):,} (accepted before dedup "
                  f"{faulted.get('pings', 0):,}), quarantined "
                  f"{faulted.get('quarantined', 0):,} {faulted.get('by_reason', {})}, nulled "
                  f"{faulted.get('nulled', 0):,} {faulted.get('nulled_by_reason', {})}"
                  + (f"  ERROR {faulted['error']}" if "error" in faulted else ""))
            print("  old code on the same quirks: " + (f"ERROR {old_quirks['error']}" if "error" in old_quirks else
                  f"committed {old_quirks['committed']:,}, quarantined {old_quirks['quarantined']:,} "
                  f"{old_quirks.get('by_reason', {})}"))
            nm, om = statistics.median(new_rate), statistics.median(old_rate)
            print(f"  pull rate, warm sandbox, median of {a.rounds}: this checkout {nm:,.0f} pings/s, old {om:,.0f} "
                  f"pings/s, ratio {nm / om:.2f}  (rounds new {[round(x) for x in new_rate]}, "
                  f"old {[round(x) for x in old_rate]})")
            nc, oc = statistics.median(new_cpu), statistics.median(old_cpu)
            print(f"  puller CPU per ping, median of {a.rounds}: this checkout {nc:.2f} us, old {oc:.2f} us, "
                  f"ratio {nc / oc:.2f}", flush=True)
    finally:
        p.terminate()
        p.wait(timeout=20)


def _realistic() -> dict:
    from sandbox.quirks import Quirks

    d = Quirks.realistic().as_dict()
    d.pop("seed")
    return d


if __name__ == "__main__":
    main()
