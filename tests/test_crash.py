"""SIGKILL the month writer at random points; a rerun must end exactly like a clean run.

At least 20 trials per backend (local here, SeaweedFS S3 in tests/test_crash_s3.py). After each kill and rerun: the
manifest lists the same fingerprints, rows and files as the clean run, every listed file reads
back complete, no (vehicle_id, ts) appears twice, and a rebuild from the store alone agrees.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from partitions import Manifest, open_store, read_month, rebuild_raw
from tests.support import seaweed
from tests.support.pings import sim_table, simulator
from tests.support.seaweed import s3_options

TRIALS = int(os.environ.get("FLEETLAKE_CRASH_TRIALS", "20"))
pytestmark = pytest.mark.slow


def _inputs(tmp: Path) -> Path:
    table = sim_table(simulator(vehicles=2, interval=60, seed=4), ["2025-02", "2025-03", "2025-04"])
    months = pc.strftime(table["ts"], format="%Y-%m")
    late = pc.and_(pc.equal(months, "2025-02"), pc.equal(pc.bit_wise_and(pc.cast(table["ts"], "int64"),
                                                                         1 << 16), 0))
    round1 = table.filter(pc.and_(pc.invert(late), pc.not_equal(months, "2025-04")))
    round2 = table.filter(pc.or_(late, pc.equal(months, "2025-04")))
    d = tmp / "input"
    d.mkdir()
    pq.write_table(round1, d / "round1.parquet")
    pq.write_table(round2, d / "round2.parquet")
    return d


def _worker(store_url: str, manifest: Path, inputs: Path, work: Path, endpoint: str | None) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.support.crash_worker", store_url, str(manifest), str(inputs), str(work)]
    return subprocess.Popen(args + ([endpoint] if endpoint else []), stdout=subprocess.PIPE, text=True)


def _run_to_end(*args) -> float:  # type: ignore[no-untyped-def]
    p = _worker(*args)
    assert p.stdout.readline().strip() == "started"
    t0 = time.monotonic()
    assert p.stdout.readline().strip() == "done"
    assert p.wait(timeout=120) == 0
    return time.monotonic() - t0


def _state(store_url: str, manifest_path: Path, endpoint: str | None, cache: Path) -> dict:
    store = open_store(store_url, s3_options(endpoint) if endpoint else None)
    with Manifest(manifest_path) as m:
        parts = {(p.dataset, p.month): (p.rows, p.fingerprint, p.files) for p in m.raw_partitions()}
        content = {}
        for dataset, month in parts:
            t = read_month(store, m, "fleet-a", month, cache, dataset=dataset)
            dupes = duckdb.sql("SELECT count(*) - count(DISTINCT (vehicle_id, ts)) FROM t").fetchall()[0][0]
            assert dupes == 0, "a ping is committed twice"
            content[month] = t
        for _, _, files in parts.values():
            for f in files:
                local = cache / f"check-{uuid.uuid4().hex}"
                store.get_file(f, local)
                pq.read_table(local)  # complete and readable
                local.unlink()
    with Manifest(manifest_path.with_name(f"rebuilt-{uuid.uuid4().hex}.duckdb")) as fresh:
        assert rebuild_raw(store, fresh).problems == ()
        rebuilt = {(p.dataset, p.month): (p.rows, p.fingerprint, p.files) for p in fresh.raw_partitions()}
    assert rebuilt == parts
    return {"parts": parts, "content": content}


def test_sigkill_at_random_points_then_rerun_equals_a_clean_run(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    soak("file", tmp_path, request)


def soak(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The soak on one backend (tests/test_crash_s3.py runs it on S3, in a file of its own so that
    xdist's --dist loadfile runs the two soaks side by side rather than one after the other)."""
    endpoint = request.getfixturevalue("seaweed_s3") if backend == "s3" else None
    inputs = _inputs(tmp_path)

    def fresh(name: str) -> tuple[str, Path, Path]:
        d = tmp_path / name
        d.mkdir()
        url = (d / "store").as_uri() if backend == "file" else f"s3://{seaweed.BUCKET}/crash-{uuid.uuid4().hex[:10]}"
        return url, d / "manifest.duckdb", d

    url, manifest, d = fresh("clean")
    duration = _run_to_end(url, manifest, inputs, d, endpoint)
    clean = _state(url, manifest, endpoint, d)
    assert {m for _, m in clean["parts"]} == {"2025-02", "2025-03", "2025-04"}

    rng = random.Random(1234)
    killed_mid_work = 0
    for trial in range(TRIALS):
        url, manifest, d = fresh(f"trial{trial}")
        p = _worker(url, manifest, inputs, d, endpoint)
        assert p.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0, duration))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        killed_mid_work += p.returncode == -signal.SIGKILL
        _run_to_end(url, manifest, inputs, d, endpoint)
        state = _state(url, manifest, endpoint, d)
        assert state["parts"] == clean["parts"], f"trial {trial}: manifest differs from the clean run"
        for month, table in clean["content"].items():
            assert state["content"][month].equals(table), f"trial {trial}: {month} content differs"
    assert killed_mid_work >= TRIALS // 2, "most kills must land before the worker finished"
