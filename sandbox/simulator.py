"""Deterministic, lazy fleet simulator.

Every (vehicle, local day) is generated on its own from a random generator seeded with
(fleet seed, vehicle, day), so any window of history costs time proportional to the days it
touches and the same inputs give identical pings every time. Continuity between days comes from
plans, not from state: a long-haul truck's week is planned as a tour (home -> 4 cities -> home)
from (seed, vehicle, week), so each day knows where it starts and ends without simulating the
days before it.

A day is simulated at 1 s resolution while the truck is out (kinematics: jerk-limited S-curve
acceleration and braking, cruise, slowdowns, city turns, breaks, injected events), then sampled
at the device's ping interval through its receiver's error model (sandbox/gnss.py: correlated
position error, AR(1) speed noise, heading noise, idle drift, dropouts, bursts, jitter). Parked
trucks report every `parked_interval_s`. Ground truth is taken from the 1 s noise-free track, so
it is what a perfect sensor would have seen. Magnitudes and their sources: docs/sandbox.md.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from common.months import month_bounds_ms  # noqa: F401 - re-exported for the sandbox's callers
from geo.distance import EARTH_RADIUS_M, METERS_PER_MILE, haversine_m
from sandbox.cities import CITIES, City
from sandbox.day_store import DayStore
from sandbox.gnss import Receiver, delivered, draw_receiver, position_error_m, reported_heading, reported_speed
from sandbox.odometer import OdometerModel, calibration_on, draw_odometer, readings, reset_value
from sandbox.sampling import event_based, time_based

MPH_TO_MPS = METERS_PER_MILE / 3600.0
DAY_S = 86_400

# What the truth calls harsh: a 1 s drop (rise) of the true speed of at least this much. Routine
# braking peaks at 0.5-3 mph/s, a few percent of firm stops reach 3.5-6 mph/s and pull-aways run
# at 1-2 mph/s (docs/sandbox.md); so a threshold above 6 mph/s for braking is one no ordinary stop
# reaches. Injected events peak at 1.0-1.2x the threshold ("near") or 1.25-1.8x ("clear").
HARSH_BRAKE_MPHPS = 7.0  # 0.32 g
HARSH_ACCEL_MPHPS = 4.0  # 0.18 g
SHARP_TURN_DEG = 40.0  # heading change within 10 s at 15 mph or more
SPEEDING_MPH = 75.0  # over this for 60 s or more
NEAR = 1.2  # events up to this multiple of the threshold are "near-threshold"

EVENT_KINDS = ("harsh_brake", "harsh_accel", "sharp_turn", "speeding")
# Expected injected events per hour of driving at event_rate=1.
_EVENTS_PER_HOUR = {"harsh_brake": 0.06, "harsh_accel": 0.04, "sharp_turn": 0.04, "speeding": 0.05}
_SLOWDOWNS_PER_HOUR = 0.4
EVENT_CACHE_DAYS = 100_000  # vehicle-days of events kept: 500 trucks for 200 days, a few MB
_NEAR_SPEEDING_PER_HOUR = 0.15


@dataclass(frozen=True)
class FleetSpec:
    """What a simulated fleet is. Everything else follows deterministically from it."""

    fleet_id: str
    seed: int
    n_vehicles: int
    history_start: datetime
    ping_interval_s: int = 5
    parked_interval_s: int = 300
    event_rate: float = 1.0
    offline_gap_rate: float = 0.10  # share of days with one device-offline gap while driving
    # Device mix and receiver errors (sandbox/gnss.py). interval_mix: driving cadences drawn per
    # device (empty: every device at ping_interval_s); jitter_s: +- seconds on each driving ping.
    interval_mix: tuple[int, ...] = ()
    jitter_s: int = 0
    dropout: tuple[float, float] = (0.01, 0.02)  # share of pings lost at random, per device
    bursts_per_hour: float = 0.3  # lost stretches of 5-60 s per driving hour
    no_heading_share: float = 0.0  # devices that report no heading
    idle_drift_share: float = 0.3  # devices whose speed drifts above 0 while idling
    # Signals of issue 26, all off by default so existing fleets keep their exact pings
    # (docs/sandbox.md, "Sampling, roads and odometers"):
    logging_mode: str = "time"  # "event": event-based logging (sandbox/sampling.py); ping_interval_s then paces parking only
    road_curvature_deg: float = 0.0  # amplitude of the roads' meander around the course (0: rhumb lines)
    odometer_realism: bool = False  # the ECU odometer of sandbox/odometer.py instead of an exact one
    no_odometer_share: float = 0.0  # with odometer_realism: devices that report no odometer
    speed_spike_rate: float = 0.0  # share of driving pings whose Doppler speed is an outlier of 5-20 mph

    def __post_init__(self) -> None:
        if self.history_start.tzinfo is None:
            raise ValueError("history_start must be timezone-aware (UTC)")
        if not 1 <= self.ping_interval_s <= 60:
            raise ValueError("ping_interval_s must be within 1..60")
        for iv in (self.ping_interval_s, *self.interval_mix):
            if not 1 <= iv <= 60:
                raise ValueError("ping_interval_s and interval_mix must be within 1..60")
            if self.parked_interval_s % iv:
                raise ValueError("parked_interval_s must be a multiple of ping_interval_s and of each interval_mix")
        if self.jitter_s < 0 or (self.jitter_s and 2 * self.jitter_s >= min((self.ping_interval_s, *self.interval_mix))):
            raise ValueError("jitter_s must be >= 0 and less than half of every ping interval")
        if self.n_vehicles < 1:
            raise ValueError("n_vehicles must be at least 1")
        if self.logging_mode not in ("time", "event"):
            raise ValueError("logging_mode must be 'time' or 'event'")

    @property
    def history_start_s(self) -> int:
        return int(self.history_start.timestamp())


@dataclass(frozen=True)
class Vehicle:
    index: int
    vehicle_id: str
    name: str
    vin: str
    home: City
    kind: str  # local | regional | longhaul
    cruise_mph: float
    odometer_start_mi: float
    receiver: Receiver
    odometer: OdometerModel | None = None  # None: the exact odometer (each day adds its planned miles)

    @property
    def interval_s(self) -> int:
        return self.receiver.interval_s


@dataclass(frozen=True)
class Leg:
    lat0: float
    lon0: float
    lat1: float
    lon1: float
    dwell_s: int  # stop after arriving (delivery); the last leg of a day has 0
    meander: tuple[tuple[float, float, float], ...] = ()  # (amplitude deg, wavelength m, phase) of the road's bends
    stretch: float = 1.0  # road length / course length that the meander makes

    def bend_deg(self, travelled_m: np.ndarray) -> np.ndarray:
        out = np.zeros(travelled_m.size)
        for amp, wave, ph in self.meander:
            out += amp * np.sin(2 * np.pi * travelled_m / wave + ph)
        return out


@dataclass(frozen=True)
class DayPlan:
    day: int  # local calendar day number since the epoch
    block_start_s: int  # this day owns [block_start_s, block_start_s + DAY_S): 04:00 local
    depart_s: int
    start: tuple[float, float]
    end: tuple[float, float]
    legs: tuple[Leg, ...]
    planned_m: float


@dataclass(frozen=True)
class Event:
    kind: str
    ts_ms: int
    lat: float
    lon: float
    speed_mph: float
    magnitude: float  # peak 1 s mph/s for brake/accel, degrees for turns, peak mph for speeding
    duration_s: int
    near_threshold: bool = False  # magnitude within NEAR x the threshold


@dataclass(frozen=True)
class PingColumns:
    """Pings of one vehicle as numpy columns, sorted by time."""

    vehicle_id: str
    ts_ms: np.ndarray  # int64
    lat: np.ndarray
    lon: np.ndarray
    speed_mph: np.ndarray
    heading_deg: np.ndarray
    odometer_mi: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    def slice(self, lo: int, hi: int) -> PingColumns:
        return PingColumns(self.vehicle_id, self.ts_ms[lo:hi], self.lat[lo:hi], self.lon[lo:hi],
                           self.speed_mph[lo:hi], self.heading_deg[lo:hi], self.odometer_mi[lo:hi])

    @staticmethod
    def concat(vehicle_id: str, parts: list[PingColumns]) -> PingColumns:
        if not parts:
            e = np.empty(0)
            return PingColumns(vehicle_id, np.empty(0, np.int64), e, e, e, e, e)
        return PingColumns(vehicle_id, *(np.concatenate([getattr(p, f) for p in parts]) for f in
                                         ("ts_ms", "lat", "lon", "speed_mph", "heading_deg", "odometer_mi")))


@dataclass(frozen=True)
class DayTruth:
    """What really happened in one day block, split by UTC month (keys 'YYYY-MM')."""

    miles: dict[str, float]
    miles_by_state: dict[str, dict[str, float]]
    driving_s: dict[str, int]
    max_from_home_mi: dict[str, float]
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Stretch:
    """One stretch of driving: moving, with no stop of STRETCH_STOP_S or more inside it.

    Crews (sandbox/crew.py) hand each stretch to one driver; its truth is split by UTC month.
    """

    start_s: int  # the first moving second
    end_s: int  # one past the last moving second
    miles: dict[str, float]
    driving_s: dict[str, int]


# A stop this long ends a stretch: an ELD leaves the driving status after 5 min stationary
# (docs/sandbox.md), and drivers change over, log in or out only at such stops.
STRETCH_STOP_S = 300


@dataclass(frozen=True)
class DayTrack:
    plan: DayPlan
    pings: PingColumns
    truth: DayTruth
    offline: tuple[int, int] | None = field(default=None)  # device-offline gap [start, end) seconds
    stretches: tuple[Stretch, ...] = ()


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([k & 0xFFFFFFFF for k in key])


def rhumb_bearing(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Constant-heading course from A to B in radians (0 = north, clockwise)."""
    p0, p1 = math.radians(lat0), math.radians(lat1)
    dpsi = math.log(math.tan(math.pi / 4 + p1 / 2) / math.tan(math.pi / 4 + p0 / 2))
    dl = math.radians(lon1 - lon0)
    return math.atan2(dl, dpsi)


def rhumb_distance_m(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    dp = p1 - p0
    dpsi = math.log(math.tan(math.pi / 4 + p1 / 2) / math.tan(math.pi / 4 + p0 / 2))
    q = dp / dpsi if abs(dpsi) > 1e-12 else math.cos(p0)
    dl = math.radians(lon1 - lon0)
    return math.hypot(dp, q * dl) * EARTH_RADIUS_M


def _month_key(ts_s: np.ndarray) -> np.ndarray:
    return ts_s.astype("datetime64[s]").astype("datetime64[M]")


class FleetSimulator:
    """Lazily generated pings, events and ground truth of one simulated fleet."""

    def __init__(self, spec: FleetSpec, cache_days: int = 256, shared: DayStore[DayTrack] | None = None) -> None:
        self.spec = spec
        self.shared = shared  # days generated once for every world of the process (sandbox/day_store.py)
        self.vehicles: tuple[Vehicle, ...] = tuple(self._make_vehicle(i) for i in range(spec.n_vehicles))
        self._cache: OrderedDict[tuple[int, int], DayTrack] = OrderedDict()
        self.cache_days = cache_days  # vehicle-days of tracks kept (a bench warming a whole fleet raises it)
        # A vehicle-day's events, kept apart from its track (a few dozen bytes next to megabytes of
        # pings) and for far more days: the events routes serve the whole fleet for a 28-day slice
        # on every page, which with 100 trucks (2,800 vehicle-days) evicted each track from the
        # 256-day cache before the next page needed it, regenerating the fleet per page.
        self._events: OrderedDict[tuple[int, int], tuple[Event, ...]] = OrderedDict()
        self._odo: dict[int, tuple[int, list[float]]] = {}
        self._reading: dict[int, tuple[int, list[float]]] = {}
        self._tours: dict[tuple[int, int], tuple[City, ...]] = {}
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- vehicles and plans
    def _make_vehicle(self, i: int) -> Vehicle:
        r = _rng(self.spec.seed, i, 1)
        home = CITIES[int(r.integers(len(CITIES)))]
        kind = str(r.choice(["local", "regional", "longhaul"], p=[0.3, 0.35, 0.35]))
        cruise = {"local": r.uniform(38, 50), "regional": r.uniform(55, 64), "longhaul": r.uniform(58, 67)}[kind]
        vid = str(212_000_000_000 + (self.spec.seed % 100_000) * 10_000 + i)
        vin = "1FUJ" + "".join("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"[int(x)] for x in r.integers(0, 33, 13))
        odo = float(r.uniform(20_000, 400_000))
        s = self.spec
        rr = _rng(s.seed, i, 5)  # its own stream: adding receiver draws moved no truck's home or route
        interval = int(s.interval_mix[int(rr.integers(len(s.interval_mix)))]) if s.interval_mix else s.ping_interval_s
        rx = draw_receiver(rr, interval, s.jitter_s, s.no_heading_share, s.idle_drift_share, s.dropout,
                           s.bursts_per_hour)
        odm = draw_odometer(_rng(s.seed, i, 7), s.no_odometer_share) if s.odometer_realism else None
        return Vehicle(i, vid, f"Truck {i + 1:03d}", vin, home, kind, float(cruise), odo, rx, odm)

    def block_start_s(self, vehicle: Vehicle, day: int) -> int:
        return day * DAY_S + (4 - vehicle.home.utc_offset_h) * 3600

    def day_of(self, vehicle: Vehicle, ts_s: int) -> int:
        return (ts_s - (4 - vehicle.home.utc_offset_h) * 3600) // DAY_S

    def _neighbours(self, city: City, lo_mi: float, hi_mi: float) -> list[City]:
        return _neighbours(city, lo_mi, hi_mi)

    def _tour(self, v: Vehicle, week: int) -> tuple[City, ...]:
        key = (v.index, week)
        if key not in self._tours:
            r = _rng(self.spec.seed, v.index, week, 2)
            # Legs up to ~680 mi make some 10-11 h driving days (and a few longer ones).
            cands = self._neighbours(v.home, 120, 680) or self._neighbours(v.home, 60, 900)
            order = [cands[int(k)] for k in r.permutation(len(cands))]
            stops: list[City] = []
            for c in order:
                prev = stops[-1] if stops else v.home
                if rhumb_distance_m(prev.lat, prev.lon, c.lat, c.lon) <= 700 * METERS_PER_MILE:
                    stops.append(c)
                if len(stops) == 4:
                    break
            while len(stops) < 4:
                stops.append(stops[-1] if stops else v.home)
            self._tours[key] = (v.home, *stops, v.home)
        return self._tours[key]

    def plan(self, v: Vehicle, day: int) -> DayPlan:
        r = _rng(self.spec.seed, v.index, day, 3)
        block = self.block_start_s(v, day)
        weekday = (day - 4) % 7  # 1970-01-05 was a Monday
        depart = block + int(r.integers(2 * 3600, 4 * 3600))
        home = (v.home.lat, v.home.lon)
        if v.kind == "longhaul":
            tour = self._tour(v, (day - 4) // 7)
            if weekday >= 5:
                return DayPlan(day, block, depart, home, home, (), 0.0)
            a, b = tour[weekday], tour[weekday + 1]
            legs: tuple[Leg, ...] = (Leg(a.lat, a.lon, b.lat, b.lon, 0),) if a != b else ()
            plan = DayPlan(day, block, depart, (a.lat, a.lon), (b.lat, b.lon), legs, 0.0)
        else:
            duty = r.random() < (0.92 if weekday < 5 else 0.12)
            if not duty:
                return DayPlan(day, block, depart, home, home, (), 0.0)
            cands = self._neighbours(v.home, 60, 500) or list(CITIES)
            if v.kind == "regional":
                toward = cands[int(r.integers(len(cands)))]
                far = _toward(v.home, toward, r.uniform(50, 180))
                points = [home, far, home]
                dwells = [int(r.integers(1800, 5400)), 0]
            else:
                n = int(r.integers(3, 6))
                points = [home]
                for _ in range(n):
                    toward = cands[int(r.integers(len(cands)))]
                    points.append(_toward(v.home, toward, r.uniform(4, 40)))
                points.append(home)
                dwells = [int(r.integers(900, 2700)) for _ in range(n)] + [0]
            legs = tuple(Leg(p[0], p[1], q[0], q[1], dw) for p, q, dw in zip(points, points[1:], dwells))
            plan = DayPlan(day, block, depart, home, home, legs, 0.0)
        legs = self._bend(v, day, plan.legs)
        planned = sum(rhumb_distance_m(lg.lat0, lg.lon0, lg.lat1, lg.lon1) * lg.stretch for lg in legs)
        return DayPlan(plan.day, plan.block_start_s, plan.depart_s, plan.start, plan.end, legs, planned)

    def _bend(self, v: Vehicle, day: int, legs: tuple[Leg, ...]) -> tuple[Leg, ...]:
        """Legs with road bends: three sinusoids of the heading along the distance travelled.

        Bends of 0.5-20 km wavelength are what a 30-60 s logger's chords cut; the stretch they
        give a leg (1 / mean cos of the bend) is known from the plan, so the odometer of a day
        stays its planned miles without simulating it.
        """
        amp = self.spec.road_curvature_deg
        if amp <= 0 or not legs:
            return legs
        r = _rng(self.spec.seed, v.index, day, 6)
        out = []
        for lg in legs:
            waves = ((amp * float(r.uniform(0.6, 1.0)), float(r.uniform(2_000, 8_000))),
                     (amp * float(r.uniform(0.3, 0.6)), float(r.uniform(500, 2_000))),
                     (amp * float(r.uniform(0.5, 1.0)), float(r.uniform(8_000, 20_000))))
            meander = tuple((a, w, float(r.uniform(0, 2 * np.pi))) for a, w in waves)
            length = rhumb_distance_m(lg.lat0, lg.lon0, lg.lat1, lg.lon1)
            probe = Leg(lg.lat0, lg.lon0, lg.lat1, lg.lon1, lg.dwell_s, meander)
            grid = np.arange(0.0, max(length, 20.0), 20.0)
            stretch = 1.0 / float(np.mean(np.cos(np.radians(probe.bend_deg(grid)))))
            out.append(Leg(lg.lat0, lg.lon0, lg.lat1, lg.lon1, lg.dwell_s, meander, stretch))
        return tuple(out)

    def _odometer_at_day(self, v: Vehicle, day: int) -> float:
        """Odometer (miles) at the start of `day`: the sum of planned miles of earlier days."""
        first = self.day_of(v, self.spec.history_start_s)
        with self._lock:
            start, sums = self._odo.get(v.index, (first, [v.odometer_start_mi]))
            while start + len(sums) - 1 < day:
                d = start + len(sums) - 1
                sums.append(sums[-1] + self.plan(v, d).planned_m / METERS_PER_MILE)
            self._odo[v.index] = (start, sums)
            return sums[max(0, day - start)]

    def _reading_at_day(self, v: Vehicle, day: int) -> float:
        """What an ECU odometer (v.odometer) reads at the start of `day`: earlier days' planned
        miles times their calibration, restarted at the last reset."""
        m = v.odometer
        assert m is not None
        first = self.day_of(v, self.spec.history_start_s)
        with self._lock:
            start, sums = self._reading.get(v.index, (first, []))
            if not sums:
                reset = reset_value(m, _rng(self.spec.seed, v.index, first, 10))
                sums.append(reset if reset is not None else v.odometer_start_mi + m.offset_mi)
            while start + len(sums) - 1 < day:
                d = start + len(sums) - 1
                reset = reset_value(m, _rng(self.spec.seed, v.index, d + 1, 10))
                grown = sums[-1] + self.plan(v, d).planned_m / METERS_PER_MILE * (1 + calibration_on(m, d - first))
                sums.append(reset if reset is not None else grown)
            self._reading[v.index] = (start, sums)
            return sums[max(0, day - start)]

    # ----------------------------------------------------------------- day generation
    def day(self, v: Vehicle, day: int) -> DayTrack:
        key = (v.index, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        shared_key = (self.spec, v.index, day)
        track = self.shared.get(shared_key) if self.shared is not None else None
        if track is None:
            track = self._generate_day(v, day)
            if self.shared is not None:
                p = track.pings
                self.shared.put(shared_key, track, (p.ts_ms, p.lat, p.lon, p.speed_mph, p.heading_deg, p.odometer_mi))
        with self._lock:
            self._cache[key] = track
            while len(self._cache) > self.cache_days:
                self._cache.popitem(last=False)
        return track

    def _generate_day(self, v: Vehicle, day: int) -> DayTrack:
        spec = self.spec
        plan = self.plan(v, day)
        r = _rng(spec.seed, v.index, day, 4)
        block0, block1 = plan.block_start_s, plan.block_start_s + DAY_S
        odo0 = self._odometer_at_day(v, day)
        hist0 = spec.history_start_s

        # --- 1 s kinematics while out
        ts_parts: list[np.ndarray] = []
        lat_parts: list[np.ndarray] = []
        lon_parts: list[np.ndarray] = []
        v_parts: list[np.ndarray] = []
        h_parts: list[np.ndarray] = []
        on_parts: list[np.ndarray] = []  # engine on: ping at the driving interval
        events: list[Event] = []
        t = plan.depart_s
        heading = 0.0
        for leg in plan.legs:
            speeds, hoff, leg_events = _leg_profile(r, rhumb_distance_m(leg.lat0, leg.lon0, leg.lat1, leg.lon1)
                                                    * leg.stretch, v.cruise_mph, v.kind, spec.event_rate)
            lat, lon, hdg = _integrate(leg, speeds, hoff, r)
            n = speeds.size
            ts = t + np.arange(n, dtype=np.int64)
            for kind, k, speed, mag, dur, near in leg_events:
                events.append(Event(kind, int(ts[k]) * 1000, float(lat[k]), float(lon[k]), speed, mag, dur, near))
            ts_parts.append(ts)
            lat_parts.append(lat)
            lon_parts.append(lon)
            v_parts.append(speeds)
            h_parts.append(hdg)
            on_parts.append(np.ones(n, bool))
            heading = float(hdg[-1])
            t += n
            if leg.dwell_s:
                d = np.arange(leg.dwell_s, dtype=np.int64)
                ts_parts.append(t + d)
                lat_parts.append(np.full(d.size, leg.lat1))
                lon_parts.append(np.full(d.size, leg.lon1))
                v_parts.append(np.zeros(d.size))
                h_parts.append(np.full(d.size, heading))
                on_parts.append(np.zeros(d.size, bool))
                t += leg.dwell_s
        if ts_parts:
            ts1 = np.concatenate(ts_parts)
            lat1 = np.concatenate(lat_parts)
            lon1 = np.concatenate(lon_parts)
            v1 = np.concatenate(v_parts)
            h1 = np.concatenate(h_parts)
            on1 = np.concatenate(on_parts)
        else:
            ts1 = np.empty(0, np.int64)
            lat1 = lon1 = v1 = h1 = np.empty(0)
            on1 = np.empty(0, bool)
        if ts1.size and ts1[-1] >= block1:
            raise AssertionError("a simulated day overran its block")  # plans keep days < 20 h

        # --- ground truth from the noise-free track (steps i -> i+1), only from history start
        step_m = haversine_m(lat1[:-1], lon1[:-1], lat1[1:], lon1[1:]) if ts1.size > 1 else np.empty(0)
        true_total = float(step_m.sum())
        keep_step = ts1[:-1] >= hist0 if ts1.size > 1 else np.empty(0, bool)
        truth = _day_truth(ts1, lat1, lon1, v1, step_m, keep_step, v.home, [e for e in events if e.ts_ms >= hist0 * 1000])
        events = [e for e in events if e.ts_ms >= hist0 * 1000]

        # --- odometer: scaled so a day adds exactly its planned miles (keeps days consistent lazily)
        scale = plan.planned_m / true_total if true_total > 0 else 1.0
        cum = np.concatenate([[0.0], np.cumsum(step_m)]) if ts1.size else np.empty(0)
        odo1 = odo0 + cum * scale / METERS_PER_MILE

        # --- sampling: driving cadence while the engine is on, parked cadence otherwise; the
        # receiver decides which of the sampled instants reach the TSP (jitter, dropouts, bursts)
        rx = v.receiver
        iv, pk = rx.interval_s, spec.parked_interval_s
        phase = (v.index * 7) % iv
        active0 = int(ts1[0]) if ts1.size else block1
        active1 = int(ts1[-1]) + 1 if ts1.size else block1
        offline = None
        idx = np.empty(0, np.int64)
        if ts1.size:
            on_idx = event_based(ts1, on1, v1, h1, step_m, phase) if spec.logging_mode == "event" else \
                time_based(ts1, on1, iv, phase)
            off_idx = np.flatnonzero(~on1 & ((ts1 - phase) % pk == 0))
            idx = np.sort(np.concatenate([delivered(r, rx, on_idx, ts1, ts1.size), off_idx]))
            if r.random() < spec.offline_gap_rate:
                moving = np.flatnonzero(v1 > 5)
                if moving.size:
                    g0 = int(ts1[moving[int(r.integers(moving.size))]])
                    offline = (g0, g0 + int(r.integers(120, 1500)))
                    idx = idx[(ts1[idx] < offline[0]) | (ts1[idx] >= offline[1])]
        before = _parked_times(block0, active0, pk, phase)
        after = _parked_times(active1, block1, pk, phase)
        end_odo = odo0 + plan.planned_m / METERS_PER_MILE
        # device signals on the 1 s track (only the sampled seconds are kept)
        sp1 = reported_speed(r, rx, v1, on1) if ts1.size else np.empty(0)
        if spec.speed_spike_rate > 0 and idx.size:
            rs = _rng(spec.seed, v.index, day, 9)
            hit = idx[(v1[idx] > 5) & (rs.random(idx.size) < spec.speed_spike_rate)]
            sp1[hit] = np.maximum(0.0, np.round(sp1[hit] + rs.choice([-1.0, 1.0], hit.size) * rs.uniform(5, 20, hit.size), 1))
        hd = reported_heading(r, rx, h1[idx], v1[idx])
        rest_h = np.nan if not rx.has_heading else heading
        p_ts = np.concatenate([before, ts1[idx], after])
        p_lat = np.concatenate([np.full(before.size, plan.start[0]), lat1[idx], np.full(after.size, plan.end[0])])
        p_lon = np.concatenate([np.full(before.size, plan.start[1]), lon1[idx], np.full(after.size, plan.end[1])])
        p_v = np.concatenate([np.zeros(before.size), sp1[idx], np.zeros(after.size)])
        p_h = np.concatenate([np.full(before.size, 0.0 if rx.has_heading else np.nan), hd,
                              np.full(after.size, rest_h)])
        p_odo = np.concatenate([np.full(before.size, odo0), odo1[idx], np.full(after.size, end_odo)])
        if v.odometer is not None:
            first = self.day_of(v, hist0)
            p_odo = readings(v.odometer, _rng(spec.seed, v.index, day, 8), self._reading_at_day(v, day), p_odo - odo0,
                             calibration_on(v.odometer, day - first), p_ts)

        # --- position error: correlated (Gauss-Markov) wander plus white jitter, metres
        north, east = position_error_m(r, rx, block0, block1, p_ts)
        p_lat = p_lat + np.degrees(north / EARTH_RADIUS_M)
        p_lon = p_lon + np.degrees(east / (EARTH_RADIUS_M * np.cos(np.radians(p_lat))))

        keep = p_ts >= hist0
        pings = PingColumns(v.vehicle_id, p_ts[keep] * 1000, np.round(p_lat[keep], 6), np.round(p_lon[keep], 6),
                            p_v[keep], np.mod(np.round(p_h[keep], 1), 360.0), np.round(p_odo[keep], 3))
        return DayTrack(plan, pings, truth, offline, _stretches(ts1, v1, step_m, keep_step))

    # ----------------------------------------------------------------- windowed access
    def _days(self, v: Vehicle, start_ms: int, end_ms: int) -> range:
        lo = max(start_ms // 1000, self.spec.history_start_s)
        hi = end_ms // 1000
        if hi <= lo:
            return range(0)
        return range(self.day_of(v, lo), self.day_of(v, hi - 1) + 1)

    def pings(self, vehicle: int | Vehicle, start_ms: int, end_ms: int) -> PingColumns:
        """Pings with start_ms <= ts < end_ms (half-open), generated lazily day by day."""
        v = vehicle if isinstance(vehicle, Vehicle) else self.vehicles[vehicle]
        parts = []
        for d in self._days(v, start_ms, end_ms):
            p = self.day(v, d).pings
            lo, hi = np.searchsorted(p.ts_ms, [start_ms, end_ms])
            if hi > lo:
                parts.append(p.slice(int(lo), int(hi)))
        return PingColumns.concat(v.vehicle_id, parts)

    def events(self, vehicle: int | Vehicle, start_ms: int, end_ms: int) -> list[Event]:
        v = vehicle if isinstance(vehicle, Vehicle) else self.vehicles[vehicle]
        return [e for d in self._days(v, start_ms, end_ms) for e in self._day_events(v, d)
                if start_ms <= e.ts_ms < end_ms]

    def _day_events(self, v: Vehicle, day: int) -> tuple[Event, ...]:
        key = (v.index, day)
        with self._lock:
            hit = self._events.get(key)
            if hit is not None:
                self._events.move_to_end(key)
                return hit
        events = tuple(self.day(v, day).truth.events)
        with self._lock:
            self._events[key] = events
            while len(self._events) > EVENT_CACHE_DAYS:
                self._events.popitem(last=False)
        return events

    def day_tracks(self, v: Vehicle, start_ms: int, end_ms: int) -> list[DayTrack]:
        return [self.day(v, d) for d in self._days(v, start_ms, end_ms)]


def _toward(home: City, target: City, miles: float) -> tuple[float, float]:
    """A point `miles` from home on the course toward `target` (keeps routes over land)."""
    total = rhumb_distance_m(home.lat, home.lon, target.lat, target.lon)
    f = min(1.0, miles * METERS_PER_MILE / max(total, 1.0))
    lat = home.lat + (target.lat - home.lat) * f
    lon = home.lon + (target.lon - home.lon) * f
    return (lat, lon)


@functools.lru_cache(maxsize=4096)
def _neighbours(city: City, lo_mi: float, hi_mi: float) -> list[City]:
    return [c for c in CITIES if c != city
            and lo_mi <= rhumb_distance_m(city.lat, city.lon, c.lat, c.lon) / METERS_PER_MILE <= hi_mi]


def _parked_times(t0: int, t1: int, every: int, phase: int) -> np.ndarray:
    first = t0 + ((phase - t0) % every)
    return np.arange(first, t1, every, dtype=np.int64)


def _ramp(v0: float, v1: float, rate: float) -> np.ndarray:
    """A constant-rate change (used where a steady, gentle change is the point: speeding)."""
    n = max(1, math.ceil(abs(v1 - v0) / rate))
    step = (v1 - v0) / n
    return v0 + step * np.arange(1, n + 1)


def _scurve(v0: float, v1: float, peak: float, jerk: float) -> np.ndarray:
    """Speeds at each following second of a jerk-limited change from v0 to v1 (mph, ends at v1).

    The rate of change rises at `jerk` (mph/s^2) to `peak` (mph/s), holds, and falls back to 0:
    the S-curve a driver's foot and a truck's brakes and driveline actually produce.
    """
    dv = abs(v1 - v0)
    if dv < 1e-9:
        return np.array([float(v1)])
    ta = peak / jerk
    if dv < peak * ta:  # too small a change to reach the peak: a triangle
        ta = math.sqrt(dv / jerk)
        a, tp = jerk * ta, 0.0
    else:
        a, tp = peak, dv / peak - ta
    total = 2 * ta + tp
    t = np.minimum(np.arange(1, max(1, math.ceil(total)) + 1, dtype=np.float64), total)
    tau = t - ta - tp
    ch = np.where(t < ta, jerk * t * t / 2,
                  np.where(t < ta + tp, a * ta / 2 + a * (t - ta), a * ta / 2 + a * tp + a * tau - jerk * tau * tau / 2))
    ch = np.minimum(ch, dv)
    ch[-1] = dv
    return v0 + math.copysign(1.0, v1 - v0) * ch


def _brake(r: np.random.Generator, v0: float, v1: float) -> np.ndarray:
    """A routine slowdown or stop: peaks of 0.5-3 mph/s, and about 4% firm ones at 3.5-6 mph/s."""
    if r.random() < 0.04:
        return _scurve(v0, v1, float(r.uniform(3.5, 6.0)), float(r.uniform(3.0, 6.0)))
    return _scurve(v0, v1, float(np.clip(r.lognormal(math.log(1.4), 0.4), 0.5, 3.0)), float(r.uniform(1.0, 3.0)))


def _pull_away(r: np.random.Generator, v0: float, v1: float) -> np.ndarray:
    """1-2 mph/s up to about 35 mph, then half that: a loaded truck is power-limited at speed."""
    a = float(r.uniform(1.0, 2.0))
    mid = max(v0, min(v1, 35.0))
    parts = []
    if mid > v0:
        parts.append(_scurve(v0, mid, a, float(r.uniform(0.5, 1.5))))
    if v1 > mid:
        parts.append(_scurve(mid, v1, a / 2, float(r.uniform(0.3, 1.0))))
    return np.concatenate(parts) if parts else np.array([float(v1)])


def _harsh(r: np.random.Generator, v0: float, sign: float, threshold: float, floor: float, jerk: tuple[float, float]
           ) -> tuple[np.ndarray, float, int, bool] | None:
    """A harsh change from v0 (sign -1 brake, +1 accel): (speeds, 1 s peak, seconds over, near).

    About 40% peak at 1.0-1.2x the threshold, the rest at 1.25-1.8x, held 1-3 s. None when the
    1 s samples of the S-curve never reach the threshold (then it was a firm manoeuvre, not an
    event, and the truth must not call it one).
    """
    near = r.random() < 0.4
    peak = threshold * float(r.uniform(1.0, 1.2) if near else r.uniform(1.25, 1.8))
    j = float(r.uniform(*jerk))
    hold = float(r.uniform(1.0, 3.0))
    dv = peak * (hold + peak / j)
    if sign < 0:
        dv = min(dv, v0 - floor)
    sp = _scurve(v0, v0 + sign * dv, peak, j)
    steps = np.diff(np.concatenate([[v0], sp])) * sign
    mag = float(steps.max())
    if mag < threshold:
        return None
    return sp, mag, int((steps >= threshold).sum()), mag < NEAR * threshold


def _leg_profile(r: np.random.Generator, length_m: float, cruise: float, kind: str,
                 event_rate: float) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int, float, float, int, bool]]]:
    """Speed (mph) and heading offset (deg) for each second of a leg, and its injected events.

    Events are (kind, second index, speed mph, magnitude, duration s, near threshold). The profile
    starts and ends at rest and covers `length_m` to within a second of travel; _integrate
    closes the remainder.
    """
    speeds: list[np.ndarray] = []
    hoffs: list[np.ndarray] = []
    events: list[tuple[str, int, float, float, int, bool]] = []
    pos = 0  # seconds so far
    dist = 0.0
    cur = 0.0
    hcur = 0.0  # heading offset the truck is on now (city turns leave it off the leg's course)
    since_break = 0

    def add(sp: np.ndarray, ho: np.ndarray | None = None) -> None:
        nonlocal pos, dist, cur, hcur
        speeds.append(sp)
        hoffs.append(np.full(sp.size, hcur) if ho is None else ho)
        pos += sp.size
        dist += float(sp.sum()) * MPH_TO_MPS
        cur = float(sp[-1])
        if ho is not None:
            hcur = float(ho[-1])

    def stop_m(vv: float) -> float:
        return vv * MPH_TO_MPS * (vv / 1.0) / 2  # room for the gentlest stop

    add(_pull_away(r, 0.0, cruise))
    local = kind == "local"
    episode_budget_m = 12_000.0
    # Drivers take a break every 2.5-4.5 h; on about 8% of long-haul legs they push through,
    # which is what the "8 h without a 30 min break" feature must find.
    break_every = r.uniform(2.5, 4.5) * 3600 if r.random() >= 0.08 else float("inf")
    while True:
        remaining = length_m - dist
        chunk = int(r.integers(240, 1800 if not local else 600))
        chunk_m = chunk * cruise * MPH_TO_MPS
        if remaining - chunk_m < stop_m(cruise) + episode_budget_m:
            stop = _brake(r, cur, 0.0)
            n = max(0, int((remaining - float(stop.sum()) * MPH_TO_MPS) / (cur * MPH_TO_MPS)))
            if n:
                add(np.full(n, cur))
            add(stop)
            break
        env = np.sin(np.pi * np.arange(1, chunk + 1) / chunk)
        add(cruise + 1.2 * env * np.sin(2 * np.pi * np.arange(chunk) / r.uniform(120, 400)))
        since_break += chunk
        hours = chunk / 3600
        if kind == "longhaul" and since_break > break_every:
            add(_brake(r, cur, 0.0))
            add(np.zeros(int(r.integers(15 * 60, 45 * 60))))
            add(_pull_away(r, 0.0, cruise))
            since_break = 0
            continue
        u = r.random()
        p = {k: v * hours * event_rate for k, v in _EVENTS_PER_HOUR.items()}
        acc = 0.0
        choice = None
        for k, pk in (*p.items(), ("slowdown", _SLOWDOWNS_PER_HOUR * hours * (3 if local else 1)),
                      ("near_speeding", _NEAR_SPEEDING_PER_HOUR * hours * (not local))):
            acc += pk
            if u < acc:
                choice = k
                break
        if choice is None:
            continue
        if choice == "harsh_brake":
            k0 = pos - 1  # the last second at the pre-event speed
            before = cur
            got = _harsh(r, cur, -1.0, HARSH_BRAKE_MPHPS, 10.0, (15.0, 30.0))
            if got is None:
                continue
            sp, mag, over, near = got
            add(sp)
            low = max(10.0, cur - float(r.uniform(0, 15)))
            if cur > low + 0.5:
                add(_brake(r, cur, low))
            add(np.full(int(r.integers(20, 60)), cur))
            add(_pull_away(r, cur, cruise))
            events.append(("harsh_brake", k0, before, mag, over, near))
        elif choice == "harsh_accel":
            low = float(r.uniform(5, 20))
            add(_brake(r, cur, low))
            add(np.full(int(r.integers(20, 60)), cur))
            k0 = pos - 1
            got = _harsh(r, cur, +1.0, HARSH_ACCEL_MPHPS, 0.0, (6.0, 12.0))
            if got is None:
                # No event after all, but the truck slowed for it: it pulls away as usual (it
                # used to jump from 5-20 mph back to cruise within one second here).
                add(_pull_away(r, cur, cruise))
                continue
            sp, mag, over, near = got
            add(sp)
            events.append(("harsh_accel", k0, low, mag, over, near))
            add(_pull_away(r, cur, cruise))
        elif choice == "sharp_turn":
            near = r.random() < 0.3
            turn_speed = float(r.uniform(20, 34))
            add(_brake(r, cur, turn_speed))
            add(np.full(20, cur))
            angle = SHARP_TURN_DEG * float(r.uniform(1.0, NEAR) if near else r.uniform(1.25, 2.25))
            angle *= 1 if r.random() < 0.5 else -1
            secs = int(r.integers(2, 5))
            back = int(r.integers(180, 300))
            k0 = pos - 1
            # cosine-shaped: the steering wheel turns in and out smoothly
            ho = hcur + np.concatenate([angle * (1 - np.cos(np.pi * np.arange(1, secs + 1) / secs)) / 2,
                                        np.full(30, angle), angle * (1 - np.arange(1, back + 1) / back)])
            add(np.full(ho.size, cur), ho)
            events.append(("sharp_turn", k0, turn_speed, abs(angle), secs, near))
            add(_pull_away(r, cur, cruise))
        elif choice == "speeding":
            peak = float(r.uniform(76.5, 83))
            hold = int(r.integers(70, 300))
            up = _ramp(cur, peak, 0.5)
            down = _ramp(peak, cruise, 0.5)
            k_over = pos + int(np.argmax(up > SPEEDING_MPH))
            add(up)
            add(np.full(hold, peak))
            add(down)
            over = int((up > SPEEDING_MPH).sum() + hold + (down > SPEEDING_MPH).sum())
            events.append(("speeding", k_over, peak, peak, over, False))
        elif choice == "near_speeding":
            top = float(r.uniform(70.5, 74))
            add(_ramp(cur, top, 0.5))
            add(np.full(int(r.integers(60, 400)), top))
            add(_ramp(cur, cruise, 0.5))
        else:  # traffic slowdown; in town, often a stop and a turn at a junction
            low = float(r.uniform(20, 40)) if not local else float(r.uniform(0, 15))
            add(_brake(r, cur, low))
            add(np.full(int(r.integers(30, 300)), cur))
            if local and r.random() < 0.6:
                # a 90 degree junction turn at walking-to-10 mph, a block, and a turn back
                turn_mph = float(r.uniform(4, 10))
                if cur < turn_mph:
                    add(_pull_away(r, cur, turn_mph))
                elif cur > turn_mph:
                    add(_brake(r, cur, turn_mph))
                side = 90.0 if r.random() < 0.5 else -90.0
                for sgn in (1.0, -1.0):
                    secs = int(r.integers(5, 9))
                    turn = hcur + sgn * side * (1 - np.cos(np.pi * np.arange(1, secs + 1) / secs)) / 2
                    add(np.full(secs, cur), turn)
                    add(np.full(int(r.integers(20, 90)), cur))
            add(_pull_away(r, cur, cruise))
    return np.concatenate(speeds), np.concatenate(hoffs), events


def _integrate(leg: Leg, speeds: np.ndarray, hoff_deg: np.ndarray, r: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dead-reckon the leg at 1 s and shear the track so it ends exactly at the destination.

    Position k is where the truck is at second k of the leg (before moving during that second).
    Returns lat, lon (degrees) and the heading of motion (degrees).
    """
    brg = rhumb_bearing(leg.lat0, leg.lon0, leg.lat1, leg.lon1)
    n = speeds.size
    wobble = 2.0 * np.sin(2 * np.pi * np.arange(n) / r.uniform(300, 900) + r.uniform(0, 2 * np.pi))
    step = speeds * MPH_TO_MPS
    if leg.meander:
        wobble = wobble + leg.bend_deg(np.concatenate([[0.0], np.cumsum(step)[:-1]]))
    h = brg + np.radians(hoff_deg + wobble)
    dn = step * np.cos(h)
    de = step * np.sin(h)
    lat = leg.lat0 + np.degrees(np.concatenate([[0.0], np.cumsum(dn)[:-1]]) / EARTH_RADIUS_M)
    lat_end = leg.lat0 + math.degrees(float(dn.sum()) / EARTH_RADIUS_M)
    lat_mid = np.concatenate([lat[1:], [lat_end]])
    dlon = np.degrees(de / (EARTH_RADIUS_M * np.cos(np.radians((lat + lat_mid) / 2))))
    lon = leg.lon0 + np.concatenate([[0.0], np.cumsum(dlon)[:-1]])
    lon_end = leg.lon0 + float(dlon.sum())
    travelled = np.concatenate([[0.0], np.cumsum(step)[:-1]])
    total = float(step.sum())
    frac = travelled / total if total > 0 else np.zeros(n)
    # Shear so the final (resting) second sits exactly on the destination.
    lat = lat - (lat_end - leg.lat1) * frac
    lon = lon - (lon_end - leg.lon1) * frac
    lat[-1], lon[-1] = leg.lat1, leg.lon1
    heading = np.mod(np.degrees(h), 360.0)
    return lat, lon, heading


def _day_truth(ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, speed: np.ndarray, step_m: np.ndarray,
               keep_step: np.ndarray, home: City, events: list[Event]) -> DayTruth:
    from geo.states import state_lookup

    miles: dict[str, float] = {}
    by_state: dict[str, dict[str, float]] = {}
    driving: dict[str, int] = {}
    far: dict[str, float] = {}
    if ts.size > 1:
        lookup = state_lookup()
        state_idx = lookup.index_of(lat[1:], lon[1:])
        names = [*lookup.codes, "--"]
        # ts is sorted, so months are contiguous runs: split at month starts instead of sorting
        month_of = _month_key(ts[:-1])
        cuts = np.flatnonzero(month_of[1:] != month_of[:-1]) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [ts.size - 1]])):
            sel = keep_step[lo:hi]
            if not sel.any():
                continue
            key = str(month_of[lo])
            m_step = step_m[lo:hi] * sel
            miles[key] = float(m_step.sum()) / METERS_PER_MILE
            per_state = np.bincount(state_idx[lo:hi], weights=m_step, minlength=len(names))
            by_state[key] = {names[i]: float(per_state[i]) / METERS_PER_MILE for i in np.flatnonzero(per_state > 0)}
            driving[key] = int(((speed[:-1][lo:hi] > 0) & sel).sum())
            far[key] = float(haversine_m(home.lat, home.lon, lat[1:][lo:hi][sel], lon[1:][lo:hi][sel]).max()) / METERS_PER_MILE
    return DayTruth(miles, by_state, driving, far, tuple(events))



def _stretches(ts: np.ndarray, speed: np.ndarray, step_m: np.ndarray, keep_step: np.ndarray) -> tuple[Stretch, ...]:
    """The day's stretches of driving, with the same truth as _day_truth (steps i -> i+1)."""
    if ts.size < 2:
        return ()
    moving = np.flatnonzero(speed[:-1] > 0)
    if not moving.size:
        return ()
    cuts = np.flatnonzero(np.diff(ts[moving]) >= STRETCH_STOP_S) + 1
    out = []
    month_of = _month_key(ts[:-1])
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [moving.size]])):
        a, b = int(moving[lo]), int(moving[hi - 1]) + 1  # steps [a, b)
        miles: dict[str, float] = {}
        driving: dict[str, int] = {}
        for m in np.unique(month_of[a:b]):
            sel = (month_of[a:b] == m) & keep_step[a:b]
            if sel.any():
                miles[str(m)] = float(step_m[a:b][sel].sum()) / METERS_PER_MILE
                driving[str(m)] = int((sel & (speed[a:b] > 0)).sum())
        out.append(Stretch(int(ts[a]), int(ts[b - 1]) + 1, miles, driving))
    return tuple(out)
