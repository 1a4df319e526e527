"""What a telematics device's GNSS receiver does to the true track (docs/sandbox.md, "Signal realism").

The simulator's truth is the noise-free 1 s track; this module turns it into what a device
reports. Each device gets its own receiver, drawn once from (fleet seed, vehicle):

- position: a Gauss-Markov (first-order, exponentially correlated) error of a few metres per
  axis, which is how GNSS position error behaves over minutes (multipath and atmosphere change
  slowly), plus sub-metre white jitter from fix to fix;
- speed: Doppler speed with an AR(1) error (sigma 0.3-1 mph, correlated over a few seconds by
  the receiver's own filter), reported to 0.1 mph; some receivers let the speed drift above 0
  while the truck idles instead of holding it at 0;
- heading: course over ground, whose error is the velocity error over the speed, so it grows
  as the truck slows; some devices report no heading at all;
- delivery: about 1-2% of pings lost at random, bursts of 5-60 s lost (tunnels, cell handover),
  optional +-jitter of the sampling instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MPH_TO_MPS = 0.44704


@dataclass(frozen=True)
class Receiver:
    """One device's error model."""

    interval_s: int  # driving cadence
    jitter_s: int  # each driving ping lands up to this many seconds early or late
    pos_sigma_m: float  # Gauss-Markov error, per axis
    pos_tau_s: float  # its correlation time
    pos_white_m: float  # fix-to-fix jitter, per axis
    speed_sigma_mph: float
    speed_phi: float  # AR(1) coefficient per second
    vel_sigma_mps: float  # horizontal velocity error behind the heading noise
    idle_drift_mph: float  # 0: speed held at 0 at rest
    has_heading: bool
    dropout: float  # share of pings lost at random
    bursts_per_hour: float  # lost stretches of 5-60 s per driving hour


def draw_receiver(r: np.random.Generator, interval_s: int, jitter_s: int, no_heading_share: float,
                  idle_drift_share: float, dropout: tuple[float, float], bursts_per_hour: float) -> Receiver:
    return Receiver(
        interval_s=interval_s, jitter_s=jitter_s,
        pos_sigma_m=float(r.uniform(1.5, 4.0)), pos_tau_s=float(r.uniform(60.0, 300.0)),
        pos_white_m=float(r.uniform(0.2, 0.8)),
        speed_sigma_mph=float(r.uniform(0.3, 1.0)), speed_phi=float(r.uniform(0.85, 0.95)),
        vel_sigma_mps=float(r.uniform(0.1, 0.3)),
        idle_drift_mph=float(r.uniform(0.2, 0.6)) if r.random() < idle_drift_share else 0.0,
        has_heading=bool(r.random() >= no_heading_share),
        dropout=float(r.uniform(*dropout)), bursts_per_hour=bursts_per_hour)


def ar1(r: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """n steps of a stationary AR(1) process with marginal std `sigma`.

    Written as a convolution of white noise with phi**k, truncated where phi**k < 1e-2 (the
    variance lost is phi**2m = 1e-4 of it), so it is vectorised (no Python loop over samples)
    and starts in its stationary state.
    """
    if n <= 0:
        return np.empty(0)
    m = max(1, int(math.ceil(math.log(1e-2) / math.log(phi))))
    e = r.normal(0.0, sigma * math.sqrt(1.0 - phi * phi), n + m)
    return np.convolve(e, phi ** np.arange(m), mode="full")[m:m + n]


def position_error_m(r: np.random.Generator, rx: Receiver, t0_s: int, t1_s: int, ts_s: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(north, east) error in metres at times ts_s within [t0_s, t1_s].

    The Gauss-Markov part is drawn on a 10 s grid and interpolated (its correlation time is
    minutes, so the grid loses nothing that the white jitter does not dominate).
    """
    grid = np.arange(t0_s, t1_s + 20, 10, dtype=np.int64)
    phi = math.exp(-10.0 / rx.pos_tau_s)
    out = []
    for _ in range(2):
        slow = np.interp(ts_s, grid, ar1(r, grid.size, phi, rx.pos_sigma_m))
        out.append(slow + r.normal(0.0, rx.pos_white_m, ts_s.size))
    return out[0], out[1]


def reported_speed(r: np.random.Generator, rx: Receiver, true_mph: np.ndarray, engine_on: np.ndarray) -> np.ndarray:
    """Device speeds (mph, 0.1 mph resolution) on the 1 s track."""
    n = true_mph.size
    noisy = np.maximum(true_mph + ar1(r, n, rx.speed_phi, rx.speed_sigma_mph), 0.0)
    out = np.where(true_mph > 0, noisy, 0.0)
    if rx.idle_drift_mph > 0:
        idle = np.flatnonzero((true_mph == 0) & engine_on)
        out[idle] = np.abs(ar1(r, idle.size, 0.95, rx.idle_drift_mph))
    return np.round(out, 1)


def reported_heading(r: np.random.Generator, rx: Receiver, true_deg: np.ndarray, true_mph: np.ndarray) -> np.ndarray:
    """Course over ground: error = velocity error / speed, so it grows as the truck slows."""
    if not rx.has_heading:
        return np.full(true_deg.size, np.nan)
    v = np.maximum(true_mph * MPH_TO_MPS, 0.05)
    sigma = np.minimum(np.degrees(rx.vel_sigma_mps / v), 90.0)
    noisy = true_deg + r.normal(0.0, 1.0, true_deg.size) * sigma * (true_mph > 0)
    return np.mod(np.round(noisy, 1), 360.0)


def delivered(r: np.random.Generator, rx: Receiver, idx: np.ndarray, ts_s: np.ndarray, n_track: int) -> np.ndarray:
    """Which sampled 1 s indices reach the TSP: jittered instants, minus dropouts and bursts."""
    if idx.size == 0:
        return idx
    if rx.jitter_s:
        idx = np.unique(np.clip(idx + r.integers(-rx.jitter_s, rx.jitter_s + 1, idx.size), 0, n_track - 1))
    keep = r.random(idx.size) >= rx.dropout
    hours = (ts_s[idx[-1]] - ts_s[idx[0]]) / 3600.0
    for _ in range(int(r.poisson(rx.bursts_per_hour * hours))):
        b0 = ts_s[idx[int(r.integers(idx.size))]]
        keep &= ~((ts_s[idx] >= b0) & (ts_s[idx] < b0 + int(r.integers(5, 61))))
    return idx[keep]
