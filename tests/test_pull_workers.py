"""Pull slices in worker processes: the same commit as an in-process pull, and a worker killed mid-slice loses nothing.

The sandbox serves over real HTTP; the workers are real processes (ingest.pull.workers) that
get access tokens only, and one is killed with SIGKILL while it holds a slice.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import Future
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.http import Limits
from connectors.oauth import Vault
from ingest.pull.backfill import PullOptions, PullProgress, PullReport, RemoteSlices, pull_fleet
from ingest.pull.hos_datasets import DATASETS as HOS_DATASETS
from ingest.pull.hos_datasets import HosPull
from ingest.pull.slices import SliceResult
from ingest.pull.workers import CompactTask, ProcessWorkers, PullWorkers, compact_in, default_threads, open_pull_workers
from partitions import Manifest
from partitions.store import LocalStore
from sandbox.server import SandboxServer
from tests.conftest import sandbox_config
from tests.test_pull_sandbox import assert_same_pings, committed_pings, connect, expected_pings

FLEET, TSP = "acme-freight", "samsara"


def _pull(server: SandboxServer, tmp: Path, workers: PullWorkers | None, rate: float = 500.0,
          progress=None, on_slice=None, hos: HosPull | None = None) -> tuple[dict, PullReport]:  # type: ignore[no-untyped-def]
    tmp.mkdir(parents=True, exist_ok=True)
    with Manifest(tmp / "m.duckdb") as manifest:
        connector = connect(server, TSP, FLEET, manifest, Vault(Fernet.generate_key().decode()))
        creds = connector.http.client.auth.credentials  # type: ignore[union-attr]
        store = LocalStore(tmp / "store")
        remote = None if workers is None else RemoteSlices(workers, server.endpoint(TSP).base_url, rate, Limits(),
                                                           creds.access_token, creds.refresh_after_401)
        start = server.world.fleets[FLEET].spec.history_start_s * 1000
        now = server.world.clock.now_ms()
        report = pull_fleet(connector, store, manifest, FLEET, start, now,
                            PullOptions(work_dir=tmp / "work", with_events=True, commit_every=4, remote=remote,
                                        progress=progress, on_slice=on_slice, hos=hos))
        parts = {(p.dataset, p.month): (p.rows, p.fingerprint, len(p.files)) for p in manifest.raw_partitions(FLEET)}
        pings = committed_pings(store, manifest, FLEET, tmp / "cache")
        assert report.slices_pulled == report.slices_planned > 0
        assert_same_pings(pings, expected_pings(server, FLEET, now), 0.001)
        return parts, report


@pytest.fixture
def server():
    with SandboxServer(sandbox_config(samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as s:
        yield s


def test_slices_in_worker_processes_commit_what_an_in_process_pull_commits(server: SandboxServer,
                                                                           tmp_path: Path) -> None:
    clean, _ = _pull(server, tmp_path / "threads", None)
    workers = open_pull_workers("process", 2, 2)
    try:
        got, report = _pull(server, tmp_path / "procs", workers)
    finally:
        workers.close()
    assert got == clean
    assert report.events is not None and report.events.rows_accepted > 0  # the events stream went through them too
    assert all(files == 1 for _rows, _fp, files in got.values())  # every month compacted when its slices were in


def test_completed_months_are_compacted_in_the_worker_processes_as_the_daemon_would(server: SandboxServer,
                                                                                   tmp_path: Path) -> None:
    """The sort of a completed month's parts into its one file runs in a pull worker process
    (CompactTask), not in the daemon: the months are what an in-process pull commits."""
    clean, _ = _pull(server, tmp_path / "threads", None)
    workers = ProcessWorkers(2, 2)
    ran: list[int] = []
    compact = workers.compact

    def recorded(task: CompactTask) -> Future[SliceResult]:
        fut = compact(task)
        fut.add_done_callback(lambda f: ran.append(f.result().worker_pid))
        return fut

    workers.compact = recorded  # type: ignore[method-assign]  # the real worker runs it; we note where
    try:
        got, _ = _pull(server, tmp_path / "procs", workers)
        pids = set(workers.pids)
    finally:
        workers.close()
    assert got == clean and all(files == 1 for _rows, _fp, files in got.values())
    assert ran and set(ran) <= pids and os.getpid() not in ran


def test_hos_months_are_pulled_in_the_worker_processes_and_land_what_an_in_process_pull_lands(
        server: SandboxServer, tmp_path: Path) -> None:
    """Each month's HOS data is a task for the pull workers like a slice (its fetch and decode
    were a fifth of the daemon's Python CPU, docs/scale.md): the months it lands, assignments,
    duty statuses and violations, are those of a pull that runs everything in the daemon."""
    clean, _ = _pull(server, tmp_path / "threads", None, hos=HosPull())
    workers = ProcessWorkers(2, 2)
    hos_pids: list[int] = []

    def note(r: SliceResult) -> None:
        if r.spooled is not None and r.spooled.accepted_hos:
            hos_pids.append(r.worker_pid)

    try:
        got, _ = _pull(server, tmp_path / "procs", workers, on_slice=note, hos=HosPull())
        pids = set(workers.pids)
    finally:
        workers.close()
    hos_months = {m for d, m in clean if d in HOS_DATASETS}
    assert hos_months and {d for d, _ in clean} >= set(HOS_DATASETS)
    assert got == clean
    assert len(hos_pids) == len(hos_months)  # one task per month, each run in a worker process
    assert set(hos_pids) <= pids and os.getpid() not in hos_pids


def test_a_compaction_that_fails_in_a_worker_raises_its_error_in_the_daemon(tmp_path: Path) -> None:
    workers = ProcessWorkers(1, 1)
    try:
        with pytest.raises(FileNotFoundError):
            compact_in(workers, "1GB")([tmp_path / "no-such-part.parquet"], tmp_path / "out.parquet")
    finally:
        workers.close()


def test_a_worker_killed_mid_slice_has_its_slice_resubmitted_and_the_result_equals_a_clean_run(
        server: SandboxServer, tmp_path: Path) -> None:
    clean, _ = _pull(server, tmp_path / "clean", None)
    workers = ProcessWorkers(2, 2)
    killed: list[int] = []

    def kill_once(p: PullProgress) -> None:
        # After the first slice landed, while the workers hold others (paced at 2 pages/s per lane,
        # a slice of several pages is mid-fetch): SIGKILL one of them.
        if not killed and p.slices_done >= 1 and workers.busy_pids:
            pid = workers.busy_pids[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        got, _ = _pull(server, tmp_path / "killed", workers, rate=8.0, progress=kill_once)
        assert killed and workers.restarts >= 1
        assert killed[0] not in workers.pids  # replaced by a fresh process
    finally:
        workers.close()
    assert got == clean


def test_slots_default_to_every_fleet_in_flight_running_all_its_lanes() -> None:
    # A slice mostly sleeps on its own token's rate: with 4 threads per worker, 16 fleets on 2
    # workers had 8 slots for 64 lanes and queued behind each other's sleeps.
    sized = open_pull_workers("thread", 2, None, fleets=16, lanes=4)
    fixed = open_pull_workers("thread", 2, 3, fleets=16, lanes=4)
    small = open_pull_workers("thread", 2, None, fleets=1, lanes=4)
    try:
        assert sized.slots == 64
        assert fixed.slots == 6  # FLEETLAKE_PULL_WORKER_THREADS, when set, is taken as it is
        assert small.slots == 8  # never fewer than 4 per worker
    finally:
        for w in (sized, fixed, small):
            w.close()
    assert default_threads(256, 1, 4) == 64  # at most MAX_THREADS per process
