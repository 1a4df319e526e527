"""One vehicle-month of pings as numpy columns, the input of every signal function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class VehicleSeries:
    """Pings of one vehicle sorted by time; a value the device did not send is NaN."""

    vehicle_id: str
    ts_ms: np.ndarray  # int64, strictly increasing
    lat: np.ndarray
    lon: np.ndarray
    speed_mph: np.ndarray
    heading_deg: np.ndarray
    odometer_mi: np.ndarray

    @property
    def n(self) -> int:
        return int(self.ts_ms.size)

    @property
    def dt_s(self) -> np.ndarray:
        """Seconds from each ping to the next (length n - 1)."""
        return np.diff(self.ts_ms) / 1000.0


def _f64(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = pc.cast(table[name], pa.float64())
    return np.asarray(pc.fill_null(col, float("nan")).to_numpy(zero_copy_only=False), dtype=np.float64)


def vehicle_series(table: pa.Table) -> VehicleSeries:
    """The series of a table holding one vehicle's pings (any order; one ping per instant kept)."""
    if table.num_rows and not bool(pc.all(pc.equal(table["vehicle_id"], table["vehicle_id"][0])).as_py()):
        raise ValueError("vehicle_series takes the pings of one vehicle")
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    order = np.argsort(ts, kind="stable")
    keep = order[np.concatenate([[True], np.diff(ts[order]) > 0])] if ts.size else order
    vid = str(table["vehicle_id"][0].as_py()) if table.num_rows else ""
    return VehicleSeries(vid, ts[keep], _f64(table, "lat")[keep], _f64(table, "lon")[keep],
                         _f64(table, "speed_mph")[keep], _f64(table, "heading_deg")[keep],
                         _f64(table, "odometer_mi")[keep])


def from_arrays(vehicle_id: str, ts_ms: np.ndarray, lat: np.ndarray, lon: np.ndarray, speed_mph: np.ndarray,
                heading_deg: np.ndarray | None = None, odometer_mi: np.ndarray | None = None) -> VehicleSeries:
    """A series from arrays already in time order (tests and the simulator's columns)."""
    n = ts_ms.size
    nan = np.full(n, np.nan)
    return VehicleSeries(vehicle_id, np.asarray(ts_ms, np.int64), np.asarray(lat, float), np.asarray(lon, float),
                         np.asarray(speed_mph, float), nan if heading_deg is None else np.asarray(heading_deg, float),
                         nan if odometer_mi is None else np.asarray(odometer_mi, float))
