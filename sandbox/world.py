"""The sandbox's state: simulated fleets, clock, OAuth authorities, rate limits and faults."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from sandbox.clock import SandboxClock
from sandbox.crew import Crew
from sandbox.day_store import SHARED_DAYS
from sandbox.faults import FaultPlan, chance
from sandbox.quirks import Quirks
from sandbox.ratelimit import RateLimiter
from sandbox.simulator import DAY_S, FleetSimulator, FleetSpec, PingColumns, Vehicle
from sandbox.tokens import TokenAuthority

TSPS = ("samsara", "motive")


@dataclass(frozen=True)
class SandboxFleet:
    spec: FleetSpec
    tsp: str
    name: str
    quirks: Quirks = Quirks()  # how this fleet's TSP API answers (sandbox/quirks.py); off by default

    def __post_init__(self) -> None:
        if self.tsp not in TSPS:
            raise ValueError(f"unknown TSP {self.tsp!r}; expected one of {TSPS}")


@dataclass(frozen=True)
class SandboxConfig:
    fleets: tuple[SandboxFleet, ...]
    now: datetime | None = None  # None: the real time
    samsara_rate_per_s: float = 50.0
    motive_rate_per_s: float = 20.0
    samsara_token_ttl_s: int = 3600
    motive_token_ttl_s: int = 7200
    samsara_faults: FaultPlan = field(default_factory=FaultPlan)
    motive_faults: FaultPlan = field(default_factory=FaultPlan)


def default_config(seed: int = 1, vehicles: int = 4, ping_interval_s: int = 30, history_months: int = 24,
                   now: datetime | None = None) -> SandboxConfig:
    """Two fleets, one per TSP, with `history_months` full months of history before `now`."""
    ref = now or datetime.now(timezone.utc)
    y, m = divmod(ref.month - 1 - history_months, 12)
    start = datetime(ref.year + y, m + 1, 1, tzinfo=timezone.utc)
    return SandboxConfig(
        fleets=(
            SandboxFleet(FleetSpec("acme-freight", seed, vehicles, start, ping_interval_s), "samsara", "Acme Freight"),
            SandboxFleet(FleetSpec("bluebird-logistics", seed + 1, vehicles, start, ping_interval_s), "motive",
                         "Bluebird Logistics"),
        ),
        now=now,
    )


class SandboxWorld:
    def __init__(self, config: SandboxConfig) -> None:
        ids = [f.spec.fleet_id for f in config.fleets]
        if len(set(ids)) != len(ids):
            raise ValueError("sandbox fleet ids must be unique")
        self.config = config
        self.clock = SandboxClock(config.now)
        self.fleets = {f.spec.fleet_id: f for f in config.fleets}
        self.sims = {f.spec.fleet_id: FleetSimulator(f.spec, shared=SHARED_DAYS) for f in config.fleets}
        self.credentials = {tsp: (f"{tsp}-sandbox-client", secrets.token_urlsafe(24)) for tsp in TSPS}
        self.authorities = {
            "samsara": TokenAuthority(self.clock, dict([self.credentials["samsara"]]),
                                      config.samsara_token_ttl_s, "ss_"),
            "motive": TokenAuthority(self.clock, dict([self.credentials["motive"]]),
                                     config.motive_token_ttl_s, "mo_"),
        }
        self.limiters = {"samsara": RateLimiter(config.samsara_rate_per_s),
                         "motive": RateLimiter(config.motive_rate_per_s)}
        self.faults = {"samsara": config.samsara_faults, "motive": config.motive_faults}
        self.quirks = {f.spec.fleet_id: f.quirks for f in config.fleets}
        self._attempts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.stats = {tsp: {"requests": 0, "throttled": 0, "faults": 0} for tsp in TSPS}
        self._crews: dict[str, Crew] = {}

    def crew(self, fleet_id: str) -> Crew:
        """The fleet's drivers and what they did (sandbox/crew.py), made when first asked for."""
        with self._lock:
            if fleet_id not in self._crews:
                self._crews[fleet_id] = Crew(self.sims[fleet_id])
            return self._crews[fleet_id]

    def fleets_of(self, tsp: str) -> list[SandboxFleet]:
        return [f for f in self.fleets.values() if f.tsp == tsp]

    def set_faults(self, tsp: str, plan: FaultPlan) -> None:
        with self._lock:
            self.faults[tsp] = plan
            self._attempts.clear()

    def set_quirks(self, fleet_id: str, quirks: Quirks) -> None:
        if fleet_id not in self.fleets:
            raise KeyError(fleet_id)
        with self._lock:
            self.quirks[fleet_id] = quirks

    def attempt(self, tsp: str, key: str) -> int:
        """How many times this exact request was made before (fault decisions key on it)."""
        with self._lock:
            n = self._attempts.get((tsp, key), 0)
            self._attempts[(tsp, key)] = n + 1
            return n

    def count(self, tsp: str, what: str) -> None:
        with self._lock:
            self.stats[tsp][what] += 1

    # ----------------------------------------------------------------- what the API can see
    def visible_pings(self, fleet_id: str, v: Vehicle, start_ms: int, end_ms: int) -> PingColumns:
        """Pings the TSP has received by the sandbox's now, in [start_ms, end_ms)."""
        sim = self.sims[fleet_id]
        now = self.clock.now_ms()
        cols = sim.pings(v, start_ms, min(end_ms, now))
        plan = self.faults[self.fleets[fleet_id].tsp]
        if plan.late_days <= 0 or not len(cols):
            return cols
        hidden = np.zeros(len(cols), bool)
        for d in range(sim.day_of(v, start_ms // 1000), sim.day_of(v, max(start_ms, min(end_ms, now) - 1) // 1000) + 1):
            window = self.late_window(fleet_id, v, d)
            if window is None:
                continue
            lo, hi, delay_ms = window
            in_window = (cols.ts_ms >= lo) & (cols.ts_ms < hi)
            hidden |= in_window & (cols.ts_ms + delay_ms > now)
        if not hidden.any():
            return cols
        keep = ~hidden
        return PingColumns(cols.vehicle_id, cols.ts_ms[keep], cols.lat[keep], cols.lon[keep],
                           cols.speed_mph[keep], cols.heading_deg[keep], cols.odometer_mi[keep])

    def late_window(self, fleet_id: str, v: Vehicle, day: int) -> tuple[int, int, int] | None:
        """[lo, hi) ms of a vehicle-day's pings that reach the TSP late, and by how much."""
        tsp = self.fleets[fleet_id].tsp
        plan = self.faults[tsp]
        if plan.late_days <= 0 or chance(plan.seed, "late", fleet_id, v.index, day) >= plan.late_days:
            return None
        depart = self.sims[fleet_id].plan(v, day).depart_s
        off = int(chance(plan.seed, "late-off", fleet_id, v.index, day) * 4 * 3600)
        # 1-3 days: within the pullers' default 3-day lookback, as a fleet's late uploads usually are
        delay_days = 1 + int(chance(plan.seed, "late-delay", fleet_id, v.index, day) * 3)
        lo = (depart + off) * 1000
        return lo, lo + 2 * 3600 * 1000, delay_days * DAY_S * 1000
