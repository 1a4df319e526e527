"""Lake commands of the `fleetlake` CLI: `sql`, `gc` and `migrate`.

Plugged into the main parser by `register(subparsers)` (ingest/cli.py build_parser).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from typing import Any

from ingest.wiring import logs
from ingest.wiring.settings import Settings, load_settings
from partitions.store import ObjectStore


def _store(settings: Settings) -> ObjectStore:
    from partitions import open_store

    return open_store(settings.resolved_store_url, settings.s3_options())


def _writer_lock(settings: Settings) -> AbstractContextManager[object]:
    """The manifest's writer lock, held: only its owner may commit or delete files in the lake.

    With no manifest file, the lock alone: these commands need none, and creating an empty one
    would make the next `fleetlake run` take it for the whole manifest of the lake it vacuums.
    """
    from common.errors import FleetlakeError, ManifestLocked
    from partitions.manifest import Manifest, writer_lock

    try:
        path = settings.resolved_manifest_path
        return Manifest(path) if path.exists() else writer_lock(path)
    except ManifestLocked:
        raise FleetlakeError("the daemon owns the lake (it holds the manifest) and vacuums it itself every "
                             f"{settings.gc_interval_hours:g} h; stop it to run this command by hand") from None


# ---------------------------------------------------------------------- fleetlake sql
def cmd_sql(args: argparse.Namespace) -> int:
    from partitions.query import lake_connection, views

    settings = logs.for_command(load_settings())
    # Every table the store holds: raw datasets that have landed, every flow version's features
    # (retired versions too: their tables stay readable).
    if args.command_text is not None:
        store = _store(settings)
        status = _run(lake_connection(store, named_in=args.command_text), args.command_text)
        if status == _UNKNOWN_NAME:
            from partitions.layout import view_name
            from partitions.tables import tables_in

            print(f"fleetlake sql: this lake's views: {', '.join(view_name(t) for t in tables_in(store)) or 'none yet'}",
                  file=sys.stderr)
        return 1 if status else 0
    con = lake_connection(_store(settings))
    print(f"fleetlake sql: DuckDB over the lake's current snapshot; views: {', '.join(views(con))}")
    print("End statements with ';'. Ctrl-D quits.")
    buf: list[str] = []
    while True:
        try:
            line = input("fleetlake> " if not buf else "      ...> ")
        except EOFError:
            print()
            return 0
        buf.append(line)
        if line.rstrip().endswith(";"):
            _run(con, "\n".join(buf))
            buf = []


_UNKNOWN_NAME = 2  # _run's answer for a query naming a table or view the lake does not have


def _run(con: Any, sql: str) -> int:
    import duckdb

    try:
        rel = con.sql(sql)
    except duckdb.CatalogException as e:
        print(f"fleetlake sql: {str(e).splitlines()[0]}", file=sys.stderr)
        return _UNKNOWN_NAME
    except duckdb.Error as e:
        print(f"fleetlake sql: {e}", file=sys.stderr)
        return 1
    if rel is not None:
        rel.show(max_width=200, max_rows=1000)
    return 0


# ---------------------------------------------------------------------- fleetlake gc
def cmd_gc(args: argparse.Namespace) -> int:
    from partitions.gc import collect_garbage
    from partitions.manifest import Manifest

    settings = logs.for_command(load_settings())
    hours = settings.gc_retention_hours if args.retention_hours is None else args.retention_hours
    with _writer_lock(settings) as held:
        manifest = held if isinstance(held, Manifest) else None  # months in parts are compacted first
        report = collect_garbage(_store(settings), hours, dry_run=args.dry_run, manifest=manifest,
                                 work_dir=settings.work_dir)
    verb = "would remove" if args.dry_run else "removed"
    for dataset, fleet, month in report.compacted:
        print(f"{'would compact' if args.dry_run else 'compacted'} {dataset} {fleet} {month} into one file")
    for f in report.removed:
        print(f"{verb} {f.key} ({f.size} bytes)")
    print(f"{verb} {len(report.removed)} files, {report.bytes_freed} bytes "
          f"(unreferenced for over {hours:g} h)")
    return 0


# ---------------------------------------------------------------------- fleetlake migrate
def cmd_migrate(args: argparse.Namespace) -> int:
    import json

    from partitions.migrate import migrate_markers

    settings = logs.for_command(load_settings())
    with _writer_lock(settings):
        report = migrate_markers(_store(settings))
    print(json.dumps({"windows": report.windows, "feature_runs": report.runs, "markers": report.markers,
                      "problems": list(report.problems)}))
    return 1 if report.problems else 0


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of hours") from None
    if not hours >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{value} hours: a retention is 0 hours or more")
    return hours


def register(sub: argparse._SubParsersAction) -> None:  # argparse's type for add_subparsers()
    p = sub.add_parser("sql", help="DuckDB over the lake's current snapshot: a view per table (pings, events, "
                                   "features_<flow>_v<n>, ...)",
                       description="Open DuckDB with one view per Delta table of the store, reading only the "
                                   "snapshot's live files. With -c, run one query and exit; without, a shell "
                                   "(statements end with ';', Ctrl-D quits).")
    p.add_argument("-c", dest="command_text", metavar="QUERY", help="run QUERY and exit (else an interactive shell)")
    p.set_defaults(func=cmd_sql)
    p = sub.add_parser("gc", help="vacuum files no Delta snapshot names (superseded, crash orphans)")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    p.add_argument("--retention-hours", type=_hours, default=None,
                   help="keep unreferenced files this long (default FLEETLAKE_GC_RETENTION_HOURS, 24)")
    p.set_defaults(func=cmd_gc)
    p = sub.add_parser("migrate", help="convert a store with _commits/ markers to Delta tables, in place")
    p.set_defaults(func=cmd_migrate)
