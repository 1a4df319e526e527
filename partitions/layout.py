"""Where things live in the store (Hive style, readable as-is by DuckDB, Athena, Spark, Polars).

    raw/<dataset>/fleet=<id>/month=<YYYY-MM>/part-<content hash>.parquet
    _commits/raw/<dataset>/fleet=<id>/month=<YYYY-MM>/<seq>.json     commit markers

Datasets: `pings` (canonical GPS pings), `events` (TSP safety events), `quarantine` (rows that
failed validation, with the reason). Every name is validated before it becomes part of a key.
"""

from __future__ import annotations

from common import names

COMMITS = "_commits"


def raw_prefix(dataset: str, fleet_id: str, month: str) -> str:
    return f"raw/{names.dataset(dataset)}/fleet={names.fleet_id(fleet_id)}/month={names.month(month)}/"


def raw_file(dataset: str, fleet_id: str, month: str, content_hash: str) -> str:
    if not content_hash.isalnum():
        raise ValueError("content hash must be alphanumeric")
    return f"{raw_prefix(dataset, fleet_id, month)}part-{content_hash}.parquet"


def raw_marker(dataset: str, fleet_id: str, month: str, seq: int) -> str:
    return f"{COMMITS}/{raw_prefix(dataset, fleet_id, month)}{seq:010d}.json"


def parse_raw_marker(key: str) -> tuple[str, str, str, int] | None:
    """(dataset, fleet_id, month, seq) of a raw commit marker key, or None if it is not one."""
    parts = key.split("/")
    if len(parts) != 6 or parts[0] != COMMITS or parts[1] != "raw" or not parts[5].endswith(".json"):
        return None
    if not parts[3].startswith("fleet=") or not parts[4].startswith("month="):
        return None
    try:
        return (names.dataset(parts[2]), names.fleet_id(parts[3][6:]), names.month(parts[4][6:]),
                int(parts[5][:-5]))
    except ValueError:
        return None
