"""What a truck's odometer reports next to its GPS (docs/sandbox.md, "Odometers").

The simulator's own odometer is exact: each day adds its driven miles. A real one is read from
the engine ECU over J1939 (SPN 245, "total vehicle distance") and behaves otherwise; each
device gets its own model, drawn once from (fleet seed, vehicle) on a stream of its own:

- offset: the reading is the truck's lifetime distance plus whatever it was set to at install,
  so only differences mean anything;
- resolution: SPN 245 counts 0.125 km per bit, so a reading moves in steps of 0.078 mi;
- calibration and slow drift: the ECU counts shaft revolutions against a programmed tyre size,
  so its distance differs from the road's by a fraction of a percent, and drifts as tyres wear;
- resets: an ECU or device swap (done in the shop, so between two days) restarts the reading
  at another value;
- glitches: a single reading far off (a bus error decoded as a value);
- missing stretches: hours with no reading (the bus not read), and some devices with none.

Readings are lazy like the rest of the simulator: the reading at the start of a day is the sum
of earlier days' planned miles times their calibration, restarted at the last reset before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KM_PER_MI = 1.609344
SPN245_QUANTUM_MI = 0.125 / KM_PER_MI  # 0.125 km per bit


@dataclass(frozen=True)
class OdometerModel:
    present: bool  # False: the device reports no odometer at all
    offset_mi: float  # added at install
    calibration: float  # reading / road distance - 1 at history start
    drift_per_30d: float  # change of `calibration` per 30 days (tyre wear)
    resets_per_day: float
    glitches_per_day: float
    missing_per_day: float  # days with one stretch of 0.5-4 h without a reading


def draw_odometer(r: np.random.Generator, no_odometer_share: float) -> OdometerModel:
    return OdometerModel(
        present=bool(r.random() >= no_odometer_share),
        offset_mi=float(r.uniform(-5_000.0, 5_000.0)),
        calibration=float(r.uniform(-0.002, 0.002)),
        drift_per_30d=float(r.uniform(-0.0003, 0.0003)),
        resets_per_day=float(r.uniform(0.0, 0.02)),
        glitches_per_day=float(r.uniform(0.0, 0.1)),
        missing_per_day=float(r.uniform(0.05, 0.25)))


def calibration_on(m: OdometerModel, days_since_start: int) -> float:
    """reading / road distance - 1 on a day, capped at +-0.3%."""
    return float(np.clip(m.calibration + m.drift_per_30d * days_since_start / 30.0, -0.003, 0.003))


def readings(m: OdometerModel, r: np.random.Generator, day_start_reading: float, miles_since_day_start: np.ndarray,
             calibration: float, ts_s: np.ndarray) -> np.ndarray:
    """A day's readings (NaN: none reported) at pings `miles_since_day_start` road miles into the day."""
    n = ts_s.size
    if not m.present:
        return np.full(n, np.nan)
    exact = day_start_reading + miles_since_day_start * (1.0 + calibration)
    out = np.floor(exact / SPN245_QUANTUM_MI) * SPN245_QUANTUM_MI
    if n and r.random() < m.missing_per_day:
        t0 = int(ts_s[int(r.integers(n))])
        out[(ts_s >= t0) & (ts_s < t0 + int(r.integers(1800, 4 * 3600)))] = np.nan
    if n and r.random() < m.glitches_per_day:
        k = int(r.integers(n))
        out[k] += float(r.choice([-1.0, 1.0])) * float(r.uniform(50.0, 50_000.0))
    return out


def reset_value(m: OdometerModel, r: np.random.Generator) -> float | None:
    """The reading a day starts at after a reset (None: no reset that day)."""
    if not m.present or r.random() >= m.resets_per_day:
        return None
    return float(r.uniform(0.0, 300_000.0))
