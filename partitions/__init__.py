"""Object store, Parquet month partitions and the DuckDB manifest.

Public API: open_store, MonthWriter, Manifest, read_month, read_snapshot, rebuild_raw, collect_garbage (Delta vacuum) and the
canonical PING_SCHEMA. Never imports `ingest`.

The names load on first use (PEP 562): `import partitions.store` must not pay for pyarrow, numpy
and DuckDB, so a command that needs only the store (`fleetlake sql`) starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "GcReport": "gc", "collect_garbage": "gc",
    "Manifest": "manifest", "RawPartition": "manifest",
    "read_month": "reader", "read_snapshot": "reader",
    "rebuild_raw": "rebuild", "rebuild_runs": "rebuild",
    "CANDIDATE_SCHEMA": "schema", "PING_SCHEMA": "schema", "QUARANTINE_SCHEMA": "schema", "candidates": "schema",
    "split_valid": "schema",
    "ObjectStore": "store", "S3Options": "store", "open_store": "store",
    "CommitResult": "writer", "MonthWriter": "writer",
}
__all__ = ["CANDIDATE_SCHEMA", "PING_SCHEMA", "QUARANTINE_SCHEMA", "CommitResult", "GcReport", "Manifest", "MonthWriter",
           "ObjectStore", "RawPartition", "S3Options", "candidates", "collect_garbage", "open_store",
           "read_month", "read_snapshot", "rebuild_raw", "rebuild_runs", "split_valid"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'partitions' has no attribute {name!r}")
    return getattr(importlib.import_module(f"partitions.{module}"), name)


if TYPE_CHECKING:  # what mypy and readers see: the same names, imported eagerly
    from partitions.gc import GcReport, collect_garbage
    from partitions.manifest import Manifest, RawPartition
    from partitions.reader import read_month, read_snapshot
    from partitions.rebuild import rebuild_raw, rebuild_runs
    from partitions.schema import CANDIDATE_SCHEMA, PING_SCHEMA, QUARANTINE_SCHEMA, candidates, split_valid
    from partitions.store import ObjectStore, S3Options, open_store
    from partitions.writer import CommitResult, MonthWriter
