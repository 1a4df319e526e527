"""The lookback a refresh pulls again is read only where it changed (ingest/pull/lookback.py).

Over HTTP from the sandbox, pings arriving late (its `late_days` fault): a refresh whose lookback
pages hold what the last commit held reads, spools and commits nothing; one whose lookback gained
late pings (the TSP received them since, for the same window) lands them; one whose open slice
grew at its end reads it from the first page that changed.
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
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.support import loopback
from tests.test_pull_sandbox import assert_same_pings, committed_pings, connect, expected_pings

DAY_MS = 86_400_000


def _since(t: pa.Table, lo: int) -> pa.Table:
    return t.filter(pc.greater_equal(pc.cast(t["ts"], pa.int64()), lo))


@pytest.mark.parametrize("tsp, fleet, odo_tol", [("samsara", "acme-freight", 0.001),
                                                 ("motive", "bluebird-logistics", 0.007)])
def test_an_unchanged_lookback_is_not_read_and_a_late_ping_in_it_lands(tmp_path: Path, tsp: str, fleet: str,
                                                                       odo_tol: float) -> None:
    with SandboxServer(sandbox_config(samsara_rate_per_s=2000.0, motive_rate_per_s=2000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        r = loopback.post(f"{server.base_url}/_sandbox/faults/{tsp}", json={"late_days": 0.6, "seed": 3})
        assert r.status_code == 200
        store, vault = LocalStore(tmp_path / "store"), Vault(Fernet.generate_key().decode())
        now = server.world.clock.now_ms()
        start = now - 10 * DAY_MS
        opts = PullOptions(work_dir=tmp_path, with_events=True)
        first = pull_fleet(connect(server, tsp, fleet, manifest, vault), store, manifest, fleet, start, now, opts)
        assert first.rows_accepted > 0
        held = manifest.conn.execute("SELECT count(*) FROM lookback_pages WHERE fleet_id = ?", [fleet]).fetchone()
        assert held is not None and held[0] > 0, "the lookback slices' digests were kept"
        versions = {(p.dataset, p.month): p.seq for d in ("pings", "events") for p in manifest.raw_partitions(fleet, d)}

        # The same refresh again: the lookback is fetched, but nothing is read, spooled or committed.
        connector = connect(server, tsp, fleet, manifest, vault)
        again = pull_fleet(connector, store, manifest, fleet, start, now, opts)
        assert connector.http.requests > 0 and again.slices_pulled > 0, "the lookback was fetched again"
        assert again.rows_accepted == 0 and again.events is not None and again.events.rows_accepted == 0
        assert [c for c in again.commits if c.dataset in ("pings", "events")] == []
        assert {(p.dataset, p.month): p.seq for d in ("pings", "events")
                for p in manifest.raw_partitions(fleet, d)} == versions

        # Two days on, the TSP has received pings it was late with, inside the lookback: the same
        # window pulled again lands them (none lost to an old digest).
        lookback_lo = now - 3 * DAY_MS
        before = _since(committed_pings(store, manifest, fleet, tmp_path / "c1"), lookback_lo).num_rows
        server.world.clock.advance(2 * 86400)
        late = pull_fleet(connect(server, tsp, fleet, manifest, vault), store, manifest, fleet, start, now, opts)
        assert late.rows_accepted > 0
        want = expected_pings(server, fleet, now)
        keep = want["ts_ms"] >= lookback_lo
        got = _since(committed_pings(store, manifest, fleet, tmp_path / "c2"), lookback_lo)
        assert got.num_rows > before, "late pings reached the TSP inside the lookback"
        assert_same_pings(got, {k: np.asarray(v)[keep] for k, v in want.items()}, odo_tol)


@pytest.mark.parametrize("tsp, fleet, odo_tol", [("samsara", "acme-freight", 0.001),
                                                 ("motive", "bluebird-logistics", 0.007)])
def test_a_grown_lookback_slice_is_read_from_its_first_changed_page(tmp_path: Path, tsp: str, fleet: str,
                                                                    odo_tol: float) -> None:
    with SandboxServer(sandbox_config(samsara_rate_per_s=2000.0, motive_rate_per_s=2000.0)) as server, \
            Manifest(tmp_path / "m.duckdb") as manifest:
        store, vault = LocalStore(tmp_path / "store"), Vault(Fernet.generate_key().decode())
        now = server.world.clock.now_ms()
        start = now - 10 * DAY_MS
        pull_fleet(connect(server, tsp, fleet, manifest, vault), store, manifest, fleet, start, now,
                   PullOptions(work_dir=tmp_path))
        row = manifest.conn.execute("SELECT sum(rows) FROM lookback_pages WHERE fleet_id = ?", [fleet]).fetchone()
        held = row[0] if row else 0
        assert held > 0
        # An hour on, as a refresh finds it: the open week has grown at its end.
        server.world.clock.advance(3600)
        later = server.world.clock.now_ms()
        grown = pull_fleet(connect(server, tsp, fleet, manifest, vault), store, manifest, fleet, start, later,
                           PullOptions(work_dir=tmp_path))
        assert grown.rows_accepted > 0
        if tsp == "samsara":  # Motive's location history comes as one page here (it says nothing of paging)
            assert grown.rows_accepted < held, "the pages before the first changed one were not read again"
        want = expected_pings(server, fleet, later)
        keep = want["ts_ms"] >= start
        assert_same_pings(committed_pings(store, manifest, fleet, tmp_path / "c"),
                          {k: np.asarray(v)[keep] for k, v in want.items()}, odo_tol)
