"""Candidate ping tables for partition tests, made from the simulator."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from partitions.schema import candidates
from sandbox.simulator import FleetSimulator, FleetSpec, Vehicle, month_bounds_ms

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def simulator(vehicles: int = 3, interval: int = 30, seed: int = 2) -> FleetSimulator:
    return FleetSimulator(FleetSpec("fleet-a", seed, vehicles, START, ping_interval_s=interval))


def sim_table(sim: FleetSimulator, months: list[str], fleet_id: str = "fleet-a",
              vehicles: list[Vehicle] | None = None) -> pa.Table:
    parts = []
    for m in months:
        lo, hi = month_bounds_ms(m)
        for v in sim.vehicles if vehicles is None else vehicles:
            c = sim.pings(v, lo, hi)
            n = len(c)
            parts.append(candidates({
                "fleet_id": [fleet_id] * n, "vehicle_id": [c.vehicle_id] * n,
                "ts": c.ts_ms.astype("datetime64[ms]"), "lat": c.lat, "lon": c.lon, "speed_mph": c.speed_mph,
                "heading_deg": c.heading_deg, "odometer_mi": c.odometer_mi, "source": ["samsara"] * n}))
    return pa.concat_tables(parts)


def shuffled_batches(table: pa.Table, n: int, seed: int = 0) -> list[pa.Table]:
    order = np.random.default_rng(seed).permutation(table.num_rows)
    t = table.take(pa.array(order))
    step = -(-t.num_rows // n)
    return [t.slice(i, step) for i in range(0, t.num_rows, step)]
