"""DuckDB over the lake: one view per Delta table, reading exactly the table's current snapshot.

delta-rs reads the table's log and hands over the snapshot's live files; DuckDB scans them
itself (`read_parquet`, the partition columns `fleet` and `month` from the Hive-style paths), as
fast as DuckDB reading those files by hand. That needs the files on a local path: on an S3 store
the view scans the Arrow dataset delta-rs builds from the same snapshot instead, since DuckDB's
httpfs and delta extensions are downloaded at run time and so are not there offline (DuckDB
still pushes projections and filters down into that scan). Nothing here imports pyarrow unless
a table needs the Arrow path: `fleetlake sql` starts in a fraction of a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import duckdb

from partitions import layout
from partitions.store import LocalStore, ObjectStore
from partitions.tables import tables_in


def lake_connection(store: ObjectStore, tables: Iterable[str] | None = None,
                    named_in: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table (`pings`, `events`, `features_<flow>_v<n>`, ...).

    `tables`: table keys to expose (default: every table in the store); missing ones are skipped.
    `named_in`: a query; only the tables whose view it names are opened (reading a table's log is
    most of a one-off query's start-up; a name it does not use costs nothing).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    con = duckdb.connect()
    keys = tables_in(store) if tables is None else list(tables)
    if named_in is not None:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", named_in.lower()))
        keys = [t for t in keys if layout.view_name(t).lower() in words]
    for table in keys:
        try:
            dt = DeltaTable(_uri(store, table), storage_options=_options(store))
        except TableNotFoundError:
            continue
        name = layout.view_name(table)
        files = dt.file_uris()
        if isinstance(store, LocalStore) and files:
            paths = ", ".join("'" + f.removeprefix("file://").replace("'", "''") + "'" for f in files)
            # One schema per table (the writer casts to it): DuckDB binds on the first file's footer.
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{paths}], hive_partitioning = true, '
                        "hive_types_autocast = false)")
        else:
            # The dataset object must outlive the view: DuckDB keeps a reference through `register`.
            con.register(f"_delta_{name}", dt.to_pyarrow_dataset())
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_delta_{name}"')
    return con


def _uri(store: ObjectStore, table: str) -> str:
    layout.parse_table(table)
    if isinstance(store, LocalStore):
        return str(store.root / table)
    from partitions.delta import table_uri  # S3: the Arrow path imports pyarrow anyway

    return table_uri(store, table)


def _options(store: ObjectStore) -> Any:
    if isinstance(store, LocalStore):
        return None
    from partitions.delta import storage_options

    return storage_options(store)


def views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
