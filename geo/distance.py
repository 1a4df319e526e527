"""Great-circle distance, vectorised."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
METERS_PER_MILE = 1609.344


def haversine_m(lat1: np.ndarray | float, lon1: np.ndarray | float,
                lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Distance in metres between points given in degrees (broadcasts like numpy)."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl * 0.5) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def consecutive_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance in metres from each point to the next (length n - 1): haversine_m(lat[:-1], ...,
    lat[1:], ...) with each point's radians and cosine computed once, and fewer temporaries."""
    if lat.size < 2:
        return np.empty(0)
    phi = np.radians(lat)
    cos_phi = np.cos(phi)
    a = np.diff(phi)
    a *= 0.5
    np.sin(a, out=a)
    a *= a
    dl = np.diff(np.radians(lon))
    dl *= 0.5
    np.sin(dl, out=dl)
    dl *= dl
    dl *= cos_phi[:-1]
    dl *= cos_phi[1:]
    a += dl
    np.clip(a, 0.0, 1.0, out=a)
    np.sqrt(a, out=a)
    np.arcsin(a, out=a)
    a *= 2.0 * EARTH_RADIUS_M
    return a
