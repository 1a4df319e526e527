"""One fleet-month of pings as numpy columns, and the pair and segment rules every flow shares.

Committed pings are sorted by (vehicle_id, ts), so each vehicle is one contiguous run of rows
and "the next ping" is simply the next row of the same run. The rules that decide what counts
as moving, as a GPS jump, as driving time and as a stop live here once, so that miles, hours,
trips and radius cannot drift apart (docs/features.md, "Shared rules").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.distance import METERS_PER_MILE, consecutive_m, haversine_m
from geo.timezones import utc_offsets_s

if TYPE_CHECKING:
    from ingest.flows.base import FlowInput

GAP_S = 600  # a silence longer than this is a gap (the trip rule: "a gap over 10 min")
IMPLAUSIBLE_MPH = 150.0  # a pair implying more than this is a GPS jump, not driving
DAY_S = 86_400
COLUMNS = ("vehicle_id", "ts", "lat", "lon", "speed_mph", "heading_deg")  # what load() reads


class Pairs:
    """Consecutive pings i -> i+1 (arrays of length n - 1), each computed on first use.

    A flow that needs only times (speed) never pays for distances.
    """

    def __init__(self, track: Track) -> None:
        # The track's arrays, not the track: a reference back to it would make a cycle that
        # keeps a whole month of arrays alive until the cyclic GC happens to run.
        self._ts, self._lat, self._lon, self._speed, self._starts = (track.ts, track.lat, track.lon, track.speed,
                                                                     track.starts)

    @cached_property
    def same(self) -> np.ndarray:
        """Both pings belong to one vehicle."""
        same = np.ones(max(self._ts.size - 1, 0), bool)
        same[self._starts[1:] - 1] = False
        return same

    @cached_property
    def dt_s(self) -> np.ndarray:
        return np.diff(self._ts) / 1000.0

    @cached_property
    def miles(self) -> np.ndarray:
        """Great-circle miles between the two fixes."""
        return consecutive_m(self._lat, self._lon) / METERS_PER_MILE

    @cached_property
    def moving(self) -> np.ndarray:
        """Same vehicle and speed > 0 at either end."""
        sp = self._speed
        return self.same & ((sp[:-1] > 0) | (sp[1:] > 0))

    @cached_property
    def counted(self) -> np.ndarray:
        """Moving and plausible: these miles are driven miles."""
        dt = self.dt_s
        with np.errstate(divide="ignore", invalid="ignore"):
            plausible = np.where(dt > 0, self.miles / (dt / 3600.0), np.inf) <= IMPLAUSIBLE_MPH
        return self.moving & plausible

    @cached_property
    def driving_s(self) -> np.ndarray:
        """Estimated seconds of driving within each pair (0 across vehicles).

        Both ends moving and no gap: the whole pair. One end moving: the truck started or
        stopped somewhere within one sampling interval, so half of one (the fleet's median
        interval while driving; parked pings are sparse, so dt itself would overcount).
        Both ends moving across a gap: the time to cover the straight-line distance at the
        mean of the two speeds, at most the gap itself.
        """
        same, dt, lat, lon = self.same, self.dt_s, self._lat, self._lon
        v0, v1 = self._speed[:-1], self._speed[1:]
        both = same & (v0 > 0) & (v1 > 0)
        one = same & ((v0 > 0) ^ (v1 > 0))
        out = np.where(both & (dt <= GAP_S), dt, 0.0)
        out = np.where(one, np.minimum(dt, self.moving_interval_s) / 2.0, out)
        gap = both & (dt > GAP_S)
        if gap.any():
            idx = np.flatnonzero(gap)
            miles = haversine_m(lat[idx], lon[idx], lat[idx + 1], lon[idx + 1]) / METERS_PER_MILE
            est = miles / np.maximum((v0[idx] + v1[idx]) / 2.0, 1.0) * 3600.0
            out[idx] = np.minimum(dt[idx], est)
        return out

    @cached_property
    def cum_driving_s(self) -> np.ndarray:
        """Driving seconds before each ping (length n): segments of every idle length share it."""
        return np.concatenate([[0.0], np.cumsum(self.driving_s)])

    @cached_property
    def cum_counted_miles(self) -> np.ndarray:
        """Counted miles before each ping (length n)."""
        return np.concatenate([[0.0], np.cumsum(np.where(self.counted, self.miles, 0.0))])

    @cached_property
    def moving_interval_s(self) -> float:
        """The fleet-month's median seconds between pings while driving (1.0 if it never drove)."""
        if self._ts.size < 2:
            return 1.0
        sp, dt = self._speed, self.dt_s
        steady = self.same & (sp[:-1] > 0) & (sp[1:] > 0) & (dt <= GAP_S) & (dt > 0)
        return float(np.median(dt[steady])) if steady.any() else 1.0


@dataclass(frozen=True)
class Segments:
    """Stretches of driving separated by idle time, as (first, last) moving-ping row indices."""

    vehicle: np.ndarray  # vehicle index of each segment
    first: np.ndarray  # row of its first moving ping
    last: np.ndarray  # row of its last moving ping
    first_ts_s: np.ndarray
    last_ts_s: np.ndarray
    driving_s: np.ndarray
    miles: np.ndarray

    @property
    def duration_s(self) -> np.ndarray:
        return (self.last_ts_s - self.first_ts_s).astype(np.float64)


@dataclass(frozen=True)
class Track:
    vehicles: tuple[str, ...]
    starts: np.ndarray  # first row of each vehicle
    ts: np.ndarray  # epoch ms, int64
    lat: np.ndarray
    lon: np.ndarray
    speed: np.ndarray  # mph; a missing speed counts as 0 (not moving)
    heading: np.ndarray  # degrees; NaN where the device sent none

    @property
    def n(self) -> int:
        return int(self.ts.size)

    @cached_property
    def ends(self) -> np.ndarray:
        return np.append(self.starts[1:], self.n).astype(np.int64)

    @cached_property
    def vehicle_index(self) -> np.ndarray:
        """The vehicle index of each row."""
        return np.repeat(np.arange(len(self.vehicles), dtype=np.int32), self.ends - self.starts)

    @cached_property
    def pair_vehicle(self) -> np.ndarray:
        """The vehicle index of each pair's first ping (pairs across vehicles count nothing anyway)."""
        return self.vehicle_index[:-1]

    @cached_property
    def pairs(self) -> Pairs:
        return Pairs(self)

    @property
    def moving_interval_s(self) -> float:
        return self.pairs.moving_interval_s

    @cached_property
    def utc_offset_s(self) -> np.ndarray:
        return utc_offsets_s(self.lat, self.lon, self.ts, self.starts)

    @cached_property
    def local_day(self) -> np.ndarray:
        """Local calendar day number of each ping (days since 1970-01-01, local time)."""
        return (self.ts // 1000 + self.utc_offset_s) // DAY_S

    @cached_property
    def local_hour(self) -> np.ndarray:
        return ((self.ts // 1000 + self.utc_offset_s) % DAY_S) / 3600.0

    def segments(self, idle_s: float) -> Segments:
        """Driving stretches that end at idle time of at least `idle_s` (or a gap over GAP_S).

        Idle time between two consecutive moving pings is the time between them minus the
        driving estimated in the pairs between them; a gap over GAP_S with no fix in between
        also ends the stretch when `idle_s` is at most GAP_S (the trip rule).
        """
        p = self.pairs
        m = np.flatnonzero(self.speed > 0)
        if m.size == 0:
            e = np.empty(0, np.int64)
            return Segments(e.astype(np.int32), e, e, e, e, np.empty(0), np.empty(0))
        cum_drive, cum_miles = p.cum_driving_s, p.cum_counted_miles
        veh = self.vehicle_index[m]
        gap = (self.ts[m[1:]] - self.ts[m[:-1]]) / 1000.0
        idle = gap - (cum_drive[m[1:]] - cum_drive[m[:-1]])
        cut = (veh[1:] != veh[:-1]) | (idle >= idle_s)
        if idle_s <= GAP_S:
            cut |= (m[1:] == m[:-1] + 1) & (gap > GAP_S)
        first = m[np.concatenate([[True], cut])]
        last = m[np.concatenate([cut, [True]])]
        return Segments(self.vehicle_index[first], first, last, self.ts[first] // 1000, self.ts[last] // 1000,
                        cum_drive[last] - cum_drive[first] + self.moving_interval_s,
                        cum_miles[last] - cum_miles[first])


# Cached groundwork that depends on positions and times only, never on speed: a track with
# other speeds (motion.still) can take these from the original instead of computing them again.
SPEED_FREE_TRACK = ("ends", "vehicle_index", "pair_vehicle", "utc_offset_s", "local_day", "local_hour")
SPEED_FREE_PAIRS = ("same", "dt_s", "miles")


def track_of(inp: FlowInput) -> Track:
    """The month's pings as a Track, loaded once per (fleet, month) task and shared by its flows."""
    tr = inp.shared.get("track")
    if tr is None:
        tr = inp.shared["track"] = load(inp.tables["pings"])
    assert isinstance(tr, Track)
    return tr


def share_speed_free(src: Track, dst: Track) -> None:
    """Give `dst` (the same pings with other speeds) the speed-free groundwork of `src`, computed once.

    Both tracks then hold the same arrays; flows never write into groundwork arrays.
    """
    for name in SPEED_FREE_TRACK:
        dst.__dict__[name] = getattr(src, name)
    for name in SPEED_FREE_PAIRS:
        dst.pairs.__dict__[name] = getattr(src.pairs, name)


def load(table: pa.Table) -> Track:
    """A Track from committed pings (any row order; committed files are already sorted)."""
    if table.num_rows and not sorted_by_vehicle(table):
        table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    vid = pc.cast(table["vehicle_id"], pa.string()).combine_chunks() if table.num_rows else pa.array([], pa.string())
    n = len(vid)
    if n:
        change = pc.not_equal(vid.slice(1), vid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)
    else:
        starts = np.empty(0, np.int64)
    vehicles = tuple(vid.take(pa.array(starts)).to_pylist()) if n else ()
    heading = table["heading_deg"] if "heading_deg" in table.column_names else pa.nulls(n, pa.float64())
    return Track(
        vehicles, starts,
        pc.cast(table["ts"], pa.int64()).to_numpy(),
        _f64(table["lat"]), _f64(table["lon"]),
        _f64(pc.fill_null(table["speed_mph"], 0.0)),
        _f64(pc.fill_null(pc.cast(heading, pa.float64()), float("nan"))),
    )


def load_vehicle(table: pa.Table) -> Track:
    """load() for the rows of one vehicle (a month walked vehicle by vehicle): no ids compared.

    Committed rows are in time order with one ping per instant; anything else takes load()'s path.
    """
    if table.num_rows == 0:
        return load(table)
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    if ts.size > 1 and not bool((ts[1:] > ts[:-1]).all()):
        return load(table)
    heading = table["heading_deg"] if "heading_deg" in table.column_names else pa.nulls(ts.size, pa.float64())
    return Track(
        (str(table["vehicle_id"][0].as_py()),), np.zeros(1, np.int64), ts,
        _f64(table["lat"]), _f64(table["lon"]),
        _f64(pc.fill_null(table["speed_mph"], 0.0)),
        _f64(pc.fill_null(pc.cast(heading, pa.float64()), float("nan"))),
    )


def _f64(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def sorted_by_vehicle(table: pa.Table) -> bool:
    """Rows in (vehicle_id, ts) order with one ping per instant, as committed files are."""
    vid = pc.cast(table["vehicle_id"], pa.string())
    ts = pc.cast(table["ts"], pa.int64())
    n = table.num_rows
    if n < 2:
        return True
    v0, v1 = vid.slice(0, n - 1), vid.slice(1)
    later = pc.less(v0, v1)
    same = pc.equal(v0, v1)
    ok = pc.or_(later, pc.and_(same, pc.less(ts.slice(0, n - 1), ts.slice(1))))
    return bool(pc.all(ok).as_py())


def quantile(values: np.ndarray, q: float) -> float | None:
    """Linear-interpolated quantile, or None for no values (an idle month has no p90)."""
    return float(np.quantile(values, q)) if values.size else None
