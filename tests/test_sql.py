"""`fleetlake sql`: DuckDB views over the current Delta snapshot, local and S3, -c or a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from partitions import Manifest
from partitions.store import ObjectStore
from tests.support import seaweed
from tests.support.pings import sim_table, simulator
from tests.test_writer import write


def _env(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_STORE_URL": store_url}
    endpoint = getattr(request.node, "s3_endpoint", None)
    if endpoint:
        env |= {"FLEETLAKE_S3_ENDPOINT_URL": endpoint, "FLEETLAKE_S3_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
                "FLEETLAKE_S3_SECRET_ACCESS_KEY": seaweed.SECRET_KEY}
    return env


def _sql(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "sql", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_sql_counts_each_ping_once_after_a_month_was_replaced(store: ObjectStore, store_url: str, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
        write(store, m, [sim_table(simulator(seed=9), ["2025-02"])], tmp_path)  # replaces February
        rows = m.raw_partition("fleet-a", "pings", "2025-02").rows
    env = _env(store_url, tmp_path, request)
    r = _sql(env, "-c", "SELECT month, count(*) AS n, count(DISTINCT (vehicle_id, ts)) AS d FROM pings GROUP BY ALL")
    assert r.returncode == 0, r.stderr
    assert f"2025-02 │ {rows} │ {rows}" in r.stdout.replace("  ", " ").replace("  ", " "), r.stdout
    secret = env.get("FLEETLAKE_S3_SECRET_ACCESS_KEY")
    assert not secret or secret not in r.stdout + r.stderr


def test_sql_shell_reads_statements_until_end_of_input(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from partitions.store import LocalStore

    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
        rows = m.raw_partition("fleet-a", "pings", "2025-02").rows
    env = _env(store.url, tmp_path, request)
    r = _sql(env, stdin="SELECT count(*) AS n\n  FROM pings;\nSELECT 'second' AS s;\n")
    assert r.returncode == 0, r.stderr
    assert "views: " in r.stdout and "pings" in r.stdout.split("views: ")[1].splitlines()[0]
    assert str(rows) in r.stdout and "second" in r.stdout


def test_a_bad_query_is_a_clear_error(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = _env((tmp_path / "store").as_uri(), tmp_path, request)
    r = _sql(env, "-c", "SELECT * FROM no_such_table")
    assert r.returncode == 1 and "no_such_table" in r.stderr and "Traceback" not in r.stderr


def test_a_query_naming_a_view_the_lake_lacks_lists_the_views_it_has(tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    from partitions.store import LocalStore

    store = LocalStore(tmp_path / "store")
    with Manifest(tmp_path / "m.duckdb") as m:
        write(store, m, [sim_table(simulator(), ["2025-02"])], tmp_path)
    env = _env(store.url, tmp_path, request)
    # A table that has not landed (no quarantined row yet) has no view: the answer says what there is.
    r = _sql(env, "-c", "SELECT count(*) FROM quarantine")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "quarantine" in r.stderr and "this lake's views: pings" in r.stderr, r.stderr
