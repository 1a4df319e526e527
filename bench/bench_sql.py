"""`fleetlake sql` against DuckDB reading the snapshot's live files itself, on the same lake.

    python bench/bench_sql.py DATA_DIR [--rounds 7]

DATA_DIR is a fleetlake data dir with a file store (e.g. ./fleetlake-data after `fleetlake demo`).
Measured, medians of `--rounds`:

- a query (miles per fleet and month from the distance feature table, and pings per fleet-month
  from the raw table) through `partitions.query.lake_connection` (what `fleetlake sql` opens) vs the
  same query on `read_parquet` over the live file list taken from delta-rs by hand (the floor);
- `fleetlake sql -c "SELECT 1"` as a process, start to exit, vs `python -c "import duckdb"`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = {
    "pings per fleet-month": "SELECT fleet, month, count(*) FROM {pings} GROUP BY ALL ORDER BY ALL",
    "miles per fleet-month": "SELECT fleet, month, sum(miles) FROM {distance} WHERE vehicle_id IS NOT NULL "
                             "GROUP BY ALL ORDER BY ALL",
}


def _median(f, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    import duckdb
    from deltalake import DeltaTable

    from partitions.query import lake_connection
    from partitions.store import LocalStore

    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    store = LocalStore(args.data_dir.resolve() / "store")
    con = lake_connection(store)
    distance = sorted(v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE view_name LIKE "
                                                "'features_distance_v%'").fetchall())[-1]
    table = "features/distance/v" + distance.rsplit("_v", 1)[1]
    floor = duckdb.connect()
    for name, key in (("pings", "raw/pings"), (distance, table)):
        files = ", ".join(f"'{f}'" for f in DeltaTable(str(store.root / key)).file_uris())
        floor.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}], hive_partitioning = true)")
    print(f"{'query':24} {'fleetlake sql':>14} {'duckdb on files':>16} {'ratio':>7}")
    for label, q in QUERIES.items():
        sql = q.format(pings="pings", distance=distance)
        ours = _median(lambda: con.execute(sql).fetchall(), args.rounds)  # noqa: B023 - timed at once
        theirs = _median(lambda: floor.execute(sql).fetchall(), args.rounds)  # noqa: B023
        print(f"{label:24} {ours * 1000:12.1f}ms {theirs * 1000:14.1f}ms {ours / theirs:6.2f}x")
    fleetlake = Path(sys.executable).with_name("fleetlake")

    def cli() -> None:
        subprocess.run([str(fleetlake), "sql", "-c", "SELECT 1"], cwd=args.data_dir.parent, check=True,
                       capture_output=True)

    def bare() -> None:
        subprocess.run([sys.executable, "-c", "import duckdb"], check=True, capture_output=True)

    start, floor_s = _median(cli, args.rounds), _median(bare, args.rounds)
    print(f"start-up: fleetlake sql -c 'SELECT 1' {start:.2f}s, python -c 'import duckdb' {floor_s:.2f}s")


if __name__ == "__main__":
    main()
