"""US state of a coordinate, from the Census TIGER polygons shipped by `these-united-states`.

Exact point-in-polygon for millions of pings is slow, so lookups go through a coarse grid:
a cell whose centre and whole neighbourhood agree on one state answers from the grid; only
points in cells near a border (or a coast) get an exact test against polygons simplified to
about 50 m. The grid is built once (a few seconds) and cached on disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

# Lower 48, Alaska and Hawaii all fall inside this box; everything outside is "no state".
_LON0, _LON1, _LAT0, _LAT1 = -180.0, -60.0, 15.0, 72.0
_RES = 0.05  # degrees per grid cell (about 5.5 km x 4 km at US latitudes)
_SIMPLIFY_DEG = 0.0005  # about 50 m: far below GPS-trace resolution of a state line
_BORDER = np.uint8(254)  # grid value: "look closer"
_NONE = np.uint8(255)  # grid value: outside every state
_GRID_FORMAT = 2


@dataclass(frozen=True)
class StateLookup:
    """Vectorised lookup of two-letter state codes ("" outside the US)."""

    codes: tuple[str, ...]
    grid: np.ndarray  # uint8 [n_lat, n_lon]: state index, _BORDER or _NONE
    polygons_wkb: tuple[bytes, ...]

    def index_of(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """State index per point (len(codes) means outside every state)."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        out = np.full(lat.shape, len(self.codes), dtype=np.int16)
        ok = np.isfinite(lat) & np.isfinite(lon) & (lat >= _LAT0) & (lat < _LAT1) & (lon >= _LON0) & (lon < _LON1)
        iy = ((lat[ok] - _LAT0) / _RES).astype(np.int64)
        ix = ((lon[ok] - _LON0) / _RES).astype(np.int64)
        cell = self.grid[iy, ix].astype(np.int16)
        cell[cell == _NONE] = len(self.codes)
        border = cell == _BORDER
        if border.any():
            cell[border] = self._exact(lat[ok][border], lon[ok][border])
        out[ok] = cell
        return out

    def code_of(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Two-letter code per point, as a numpy string array."""
        table = np.array([*self.codes, ""], dtype=object)
        return table[self.index_of(lat, lon)]

    def _exact(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        import shapely  # here, not at the top: its import costs ~0.3 s and most lookups never need it

        res = np.full(lat.shape, len(self.codes), dtype=np.int16)
        for i, (poly, (x0, y0, x1, y1)) in enumerate(_prepared(self)):
            m = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1) & (res == len(self.codes))
            if m.any():
                hit = shapely.contains_xy(poly, lon[m], lat[m])
                res[np.flatnonzero(m)[hit]] = i
        return res


_prepared_cache: dict[int, list[tuple[object, tuple[float, float, float, float]]]] = {}
_lock = threading.Lock()
_instance: StateLookup | None = None


def _prepared(lookup: StateLookup) -> list[tuple[object, tuple[float, float, float, float]]]:
    key = id(lookup)
    with _lock:
        if key not in _prepared_cache:
            import shapely  # see _exact

            polys = [shapely.from_wkb(b) for b in lookup.polygons_wkb]
            for p in polys:
                shapely.prepare(p)
            _prepared_cache[key] = [(p, tuple(shapely.bounds(p))) for p in polys]
        return _prepared_cache[key]


def state_lookup(cache_dir: Path | None = None) -> StateLookup:
    """The process-wide lookup, built on first use and cached on disk."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = _load_or_build(cache_dir or _default_cache_dir())
        return _instance


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetlake"


def _cache_key() -> str:
    version = metadata.version("these-united-states")
    return hashlib.sha256(f"{version}|{_RES}|{_SIMPLIFY_DEG}|{_GRID_FORMAT}".encode()).hexdigest()[:16]


def _load_or_build(cache_dir: Path) -> StateLookup:
    path = cache_dir / f"states-{_cache_key()}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                codes = tuple(str(c) for c in z["codes"])
                polys = tuple(bytes(z[f"poly_{i}"]) for i in range(len(codes)))
                return StateLookup(codes, z["grid"], polys)
        except (OSError, KeyError, ValueError):
            pass  # a corrupt cache is rebuilt, never trusted
    lookup = _build()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        arrays = {"codes": np.array(lookup.codes), "grid": lookup.grid}
        arrays.update({f"poly_{i}": np.frombuffer(b, dtype=np.uint8) for i, b in enumerate(lookup.polygons_wkb)})
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: still works, just rebuilds per process
    return lookup


def _read_polygons() -> tuple[list[str], list[object]]:
    import shapefile  # type: ignore[import-untyped]  # pyshp ships no types; only needed to build the cache
    import shapely  # see _exact

    with resources.files("united_states").joinpath("shapes.zip").open("rb") as fh:
        z = zipfile.ZipFile(io.BytesIO(fh.read()))
    stem = next(n[:-4] for n in z.namelist() if n.endswith(".shp"))
    reader = shapefile.Reader(shp=io.BytesIO(z.read(stem + ".shp")), dbf=io.BytesIO(z.read(stem + ".dbf")),
                              shx=io.BytesIO(z.read(stem + ".shx")))
    codes: list[str] = []
    polys: list[object] = []
    for sr in reader.shapeRecords():
        codes.append(str(sr.record.as_dict()["STUSPS"]))
        geom = shapely.geometry.shape(sr.shape.__geo_interface__)
        polys.append(shapely.make_valid(shapely.simplify(geom, _SIMPLIFY_DEG)))
    return codes, polys


def _build() -> StateLookup:
    import shapely  # see _exact

    codes, polys = _read_polygons()
    # Label a 2x finer lattice of points by exact containment, one state at a time within its
    # bounding box; a cell is "clean" when its four sub-points and all eight neighbour cells
    # agree, otherwise it is a border cell.
    n_lat = int(round((_LAT1 - _LAT0) / _RES))
    n_lon = int(round((_LON1 - _LON0) / _RES))
    sub = _RES / 2
    ys = _LAT0 + sub * (np.arange(2 * n_lat) + 0.5)
    xs = _LON0 + sub * (np.arange(2 * n_lon) + 0.5)
    labels = np.full((2 * n_lat, 2 * n_lon), 255, dtype=np.uint8)
    for i, poly in enumerate(polys):
        shapely.prepare(poly)
        x0, y0, x1, y1 = shapely.bounds(poly)
        cx = np.flatnonzero((xs >= x0) & (xs <= x1))
        cy = np.flatnonzero((ys >= y0) & (ys <= y1))
        if cx.size == 0 or cy.size == 0:
            continue
        gx, gy = np.meshgrid(xs[cx], ys[cy])
        inside = shapely.contains_xy(poly, gx, gy)
        window = labels[cy[0]:cy[-1] + 1, cx[0]:cx[-1] + 1]
        window[inside] = i
    q = labels.reshape(n_lat, 2, n_lon, 2)
    first = q[:, 0, :, 0]
    same = (q[:, 0, :, 1] == first) & (q[:, 1, :, 0] == first) & (q[:, 1, :, 1] == first)
    grid = np.where(same, first, _BORDER).astype(np.uint8)
    padded = np.pad(grid, 1, mode="edge")
    clean = grid != _BORDER
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            clean &= padded[1 + dy:1 + dy + n_lat, 1 + dx:1 + dx + n_lon] == grid
    grid = np.where(clean, grid, _BORDER).astype(np.uint8)
    return StateLookup(tuple(codes), grid, tuple(shapely.to_wkb(p) for p in polys))
