"""Pulls over HTTP from a sandbox that answers with the real APIs' quirks, compared exactly with the simulator.

Each quirk (sandbox/quirks.py) is served, pulled through the connector, the writer and the
committed Delta month, and checked point by point: none lost, none duplicated, offsets landing at
the right UTC millisecond, and the fields a quirk changed (a 360.0 heading, an absent or null
speed) costing that field only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cryptography.fernet import Fernet

from connectors.oauth import Vault
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.support import loopback
from tests.test_pull_sandbox import committed_pings, connect

DAY_MS = 86_400_000
KM_PER_MILE = 1.609344
FLEETS = {"samsara": "acme-freight", "motive": "bluebird-logistics"}


def expected(server: SandboxServer, tsp: str, fleet: str, start: int, end: int, q: Quirks) -> dict[str, np.ndarray]:
    """The simulator's pings in [start, end) as the connector must land them under quirks q."""
    sim = server.world.sims[fleet]
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("vid", "ts", "lat", "lon", "speed", "heading", "odo")}
    for v in sim.vehicles:
        c = server.world.visible_pings(fleet, v, start, end)
        if tsp == "motive":
            kmh = np.round(c.speed_mph * KM_PER_MILE, 2)
            speed = np.where(q.picked("null_speed", v.vehicle_id, c.ts_ms), np.nan, kmh / KM_PER_MILE)
            moving = kmh > 0
            odo = np.round(c.odometer_mi * KM_PER_MILE, 2) / KM_PER_MILE
            ts = c.ts_ms // 1000 * 1000
        else:
            absent = q.picked("absent_optional", v.vehicle_id, c.ts_ms)
            speed = np.where(absent, np.nan, c.speed_mph)
            moving = (c.speed_mph > 0) & ~absent
            odo = c.odometer_mi
            ts = c.ts_ms
        north = q.picked("north_as_360", v.vehicle_id, c.ts_ms)
        heading = np.where(moving, np.where(north, 0.0, c.heading_deg), np.nan)
        for k, a in (("vid", np.array([v.vehicle_id] * len(c))), ("ts", ts), ("lat", c.lat), ("lon", c.lon),
                     ("speed", speed), ("heading", heading), ("odo", odo)):
            rows[k].append(a)
    out = {k: np.concatenate(a) for k, a in rows.items()}
    order = np.lexsort((out["ts"], out["vid"]))
    return {k: a[order] for k, a in out.items()}


def as_arrays(got: pa.Table) -> dict[str, np.ndarray]:
    got = got.set_column(1, "vehicle_id", pc.cast(got["vehicle_id"], pa.string()))
    got = got.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])

    def f(name: str) -> np.ndarray:
        return pc.fill_null(pc.cast(got[name], pa.float64()), float("nan")).to_numpy()

    return {"vid": np.array(got["vehicle_id"].to_pylist()), "ts": np.asarray(pc.cast(got["ts"], pa.int64())),
            "lat": got["lat"].to_numpy(), "lon": got["lon"].to_numpy(), "speed": f("speed_mph"),
            "heading": f("heading_deg"), "odo": f("odometer_mi")}


def assert_exact(got: dict[str, np.ndarray], want: dict[str, np.ndarray], odo_tol: float) -> None:
    assert len(got["ts"]) == len(want["ts"]) > 0, "none lost, none duplicated"
    assert np.array_equal(got["vid"], want["vid"])
    assert np.array_equal(got["ts"], want["ts"]), "every time lands at its UTC millisecond"
    assert np.array_equal(got["lat"], want["lat"]) and np.array_equal(got["lon"], want["lon"])
    assert np.array_equal(np.isnan(got["speed"]), np.isnan(want["speed"])), "null speeds exactly where sent"
    assert np.allclose(got["speed"], want["speed"], atol=0.01, equal_nan=True)
    assert np.array_equal(np.isnan(got["heading"]), np.isnan(want["heading"]))
    assert np.allclose(got["heading"], want["heading"], atol=1e-3, equal_nan=True)
    assert np.allclose(got["odo"], want["odo"], atol=odo_tol, equal_nan=False)


def pull(server: SandboxServer, tsp: str, tmp_path: Path, start: int, end: int):  # type: ignore[no-untyped-def]
    fleet = FLEETS[tsp]
    with Manifest(tmp_path / f"{tsp}.duckdb") as manifest:
        store = LocalStore(tmp_path / f"{tsp}-store")
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        report = pull_fleet(connector, store, manifest, fleet, start, end,
                            PullOptions(work_dir=tmp_path, lookback_ms=0))
        return report, connector, as_arrays(committed_pings(store, manifest, fleet, tmp_path / f"{tsp}-c"))


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    with SandboxServer(sandbox_config(samsara_rate_per_s=1000.0, motive_rate_per_s=1000.0)) as s:
        yield s


# The US spring-forward (2026-03-08) falls inside: local offsets change mid-window.
START = 1772323200000  # 2026-03-01T00:00:00Z
END = START + 14 * DAY_MS

SINGLE = {
    "local offsets and DST hours": Quirks(seed=3, local_offsets=True),
    "with and without milliseconds": Quirks(seed=3, whole_seconds=0.5),
    "absent optional fields": Quirks(seed=3, absent_optional=0.2),
    "unknown extra fields": Quirks(seed=3, extra_fields=True),
    "integers for floats": Quirks(seed=3, ints_for_floats=True),
    "empty gps arrays and no gps key": Quirks(seed=3, empty_gps=True),
    "pages of varying size": Quirks(seed=3, page_sizes=True),
    "odometer on its own clock": Quirks(seed=3, odometer_own_times=True),
    "headings of 360.0": Quirks(seed=3, north_as_360=0.2),
    "null speeds": Quirks(seed=3, null_speed=0.2),
    "paged history": Quirks(seed=3, paged_history=True),
    "all at once": Quirks.realistic(seed=4),
}


@pytest.mark.parametrize("tsp", ["samsara", "motive"])
@pytest.mark.parametrize("name", list(SINGLE))
def test_each_quirk_is_pulled_exactly(server: SandboxServer, tmp_path: Path, tsp: str, name: str) -> None:
    q = SINGLE[name]
    fleet = FLEETS[tsp]
    server.world.set_quirks(fleet, q)
    try:
        report, connector, got = pull(server, tsp, tmp_path, START, END)
    finally:
        server.world.set_quirks(fleet, Quirks())
    assert report.quarantined == {}, "a quirk is the API working as documented: nothing is quarantined"
    assert report.nulled == {}, "nor is any value impossible"
    assert connector.salvaged_pages == 0, "quirks pass the fast typed decode"
    assert_exact(got, expected(server, tsp, fleet, START, END, q), 0.001 if tsp == "samsara" else 0.007)


def test_offsets_change_across_dst_and_are_served_as_such(server: SandboxServer) -> None:
    """The sandbox really sends -06:00 before and -05:00 after the spring-forward (a Central fleet)."""
    from tests.support.tsp_http import bearer, samsara_consent

    server.world.set_quirks("acme-freight", Quirks(local_offsets=True))
    try:
        with loopback.client(timeout=30) as client:
            ep = server.endpoint("samsara")
            h = bearer(samsara_consent(client, ep, "acme-freight"))
            offsets = set()
            for v in server.world.sims["acme-freight"].vehicles:
                r = client.get(f"{ep.base_url}/fleet/vehicles/stats/history", headers=h, params={
                    "types": "gps", "vehicleIds": v.vehicle_id, "startTime": "2026-03-07T00:00:00Z",
                    "endTime": "2026-03-10T00:00:00Z"})
                offsets |= {p["time"][-6:] for d in r.json()["data"] for p in d["gps"]}
    finally:
        server.world.set_quirks("acme-freight", Quirks())
    # Standard and daylight offsets of one zone both occur (e.g. -06:00 and -05:00).
    hours = {int(o[:3]) for o in offsets}
    assert len(offsets) >= 2 and any(h + 1 in hours for h in hours), offsets


def test_motive_history_spanning_several_pages_lands_every_point(server: SandboxServer, tmp_path: Path) -> None:
    fleet = FLEETS["motive"]
    server.world.set_quirks(fleet, Quirks(paged_history=True))
    try:
        report, connector, got = pull(server, "motive", tmp_path, START, START + 7 * DAY_MS)
    finally:
        server.world.set_quirks(fleet, Quirks())
    want = expected(server, "motive", fleet, START, START + 7 * DAY_MS, Quirks())
    per_vehicle_week = len(want["ts"]) / len(server.world.sims[fleet].vehicles)
    assert per_vehicle_week > 300, "each vehicle-window spans several pages of 100"
    # vehicles + pages: at least ceil(points / 100) requests per vehicle-window
    assert connector.http.requests >= 1 + len(server.world.sims[fleet].vehicles) * 3
    assert_exact(got, want, 0.007)
