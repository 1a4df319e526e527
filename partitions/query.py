"""DuckDB over the lake: one view per Delta table, reading exactly the table's current snapshot.

Each view scans the Arrow dataset delta-rs builds from the snapshot (only live files, partition
columns `fleet` and `month` from the log). This works the same for local and S3 stores without
DuckDB's httpfs or delta extensions, which are downloaded at run time and so are not available
offline; DuckDB still pushes projections and filters down into the scan.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from partitions import layout
from partitions.delta import lake_for
from partitions.store import ObjectStore


def lake_connection(store: ObjectStore, tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table (`pings`, `events`, `features_<flow>_v<n>`, ...).

    `tables`: table keys to expose (default: every table in the store); missing ones are skipped.
    """
    lake = lake_for(store)
    con = duckdb.connect()
    for table in (lake.tables() if tables is None else tables):
        dt = lake.open(table)
        if dt is None:
            continue
        name = layout.view_name(table)
        # The dataset object must outlive the view: DuckDB keeps a reference through `register`.
        con.register(f"_delta_{name}", dt.to_pyarrow_dataset())
        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_delta_{name}"')
    return con


def views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
