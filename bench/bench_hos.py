"""What drivers and hours of service add to a backfill: requests and seconds, measured.

Two identical sandboxes (in-process, rate limits out of reach) and the same backfill of the same
fleet, once without and once with the HOS datasets (PullOptions.hos). Each sandbox is warmed
first: every vehicle-day's track and crew is generated before the clock starts, so the seconds
are the puller's and the serving, not the simulator's. Printed per TSP: requests and seconds of
each, and the difference (absolute and as a share of the pings-only backfill), and the HOS
requests per month; scale them by months for a full history (the HOS requests grow with drivers
x months, the pings' with vehicles x weeks).

    python bench/bench_hos.py [--vehicles 100] [--months 1] [--interval 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.months import month_bounds_ms  # noqa: E402
from connectors.oauth import Vault  # noqa: E402
from ingest.pull.backfill import PullOptions, pull_fleet  # noqa: E402
from ingest.pull.hos_datasets import HosPull  # noqa: E402
from partitions import Manifest  # noqa: E402
from partitions.store import LocalStore  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.simulator import FleetSpec  # noqa: E402
from sandbox.world import SandboxConfig, SandboxFleet  # noqa: E402
from tests.test_pull_sandbox import connect  # noqa: E402

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def run(tsp: str, vehicles: int, months: int, interval: int, with_hos: bool) -> tuple[int, float]:
    y, m = divmod(NOW.month - 1 - months, 12)
    start = datetime(NOW.year + y, m + 1, 1, tzinfo=timezone.utc)
    fleet = f"{tsp}-bench"
    cfg = SandboxConfig((SandboxFleet(FleetSpec(fleet, 7, vehicles, start, interval), tsp, "Bench"),), now=NOW,
                        samsara_rate_per_s=100_000.0, motive_rate_per_s=100_000.0)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(cfg) as server, \
            Manifest(Path(tmp) / "m.duckdb") as manifest:
        crew = server.world.crew(fleet)
        lo = int(start.timestamp() * 1000)
        hi = month_bounds_ms(f"{NOW.year:04d}-{NOW.month:02d}")[0]
        # Keep every warmed vehicle-day: with the default 256 the fleet's days were evicted before the
        # pull asked for them, so the seconds measured the simulator regenerating them (two runs of
        # the same Motive 100-truck bench gave +76.7 % and +17.2 %).
        server.world.sims[fleet].cache_days = vehicles * (months * 31 + 2)
        for v in crew.sim.vehicles:  # warm: tracks and stretches made before the clock starts
            server.world.visible_pings(fleet, v, lo, hi)
            for d in crew.days_of(v, lo // 1000, hi // 1000):
                crew.day(v, d)
        for d in crew.drivers:
            for mo in range(months):
                yy, mm = divmod(start.month - 1 + mo, 12)
                crew.violations(d.index, f"{start.year + yy:04d}-{mm + 1:02d}")
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        before = server.world.stats[tsp]["requests"]
        t0 = time.perf_counter()
        pull_fleet(connector, LocalStore(Path(tmp) / "lake"), manifest, fleet, lo, hi,
                   PullOptions(with_events=True, hos=HosPull() if with_hos else None))
        return server.world.stats[tsp]["requests"] - before, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=100)
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--tsp", default="samsara,motive")
    a = ap.parse_args()
    for tsp in a.tsp.split(","):
        base_r, base_s = run(tsp, a.vehicles, a.months, a.interval, False)
        hos_r, hos_s = run(tsp, a.vehicles, a.months, a.interval, True)
        print(f"{tsp}: {a.vehicles} trucks, {a.months} month(s) at {a.interval} s: pings+events {base_r} requests "
              f"{base_s:.1f} s; with drivers+HOS {hos_r} requests {hos_s:.1f} s; extra {hos_r - base_r} requests "
              f"(+{(hos_r - base_r) / base_r:.1%}), {hos_s - base_s:+.1f} s ({(hos_s - base_s) / base_s:+.1%}); "
              f"{(hos_r - base_r) / a.months:.0f} HOS requests a month")


if __name__ == "__main__":
    main()
