"""Object store, Parquet month partitions and the DuckDB manifest.

Public API: open_store, MonthWriter, Manifest, read_month, rebuild_raw, collect_garbage (Delta vacuum) and the
canonical PING_SCHEMA. Never imports `ingest`.
"""

from __future__ import annotations

from partitions.gc import GcReport, collect_garbage
from partitions.manifest import Manifest, RawPartition
from partitions.reader import read_month
from partitions.rebuild import rebuild_raw, rebuild_runs
from partitions.schema import CANDIDATE_SCHEMA, PING_SCHEMA, QUARANTINE_SCHEMA, candidates, split_valid
from partitions.store import ObjectStore, S3Options, open_store
from partitions.writer import CommitResult, MonthWriter

__all__ = ["CANDIDATE_SCHEMA", "PING_SCHEMA", "QUARANTINE_SCHEMA", "CommitResult", "GcReport", "Manifest", "MonthWriter",
           "ObjectStore", "RawPartition", "S3Options", "candidates", "collect_garbage", "open_store",
           "read_month", "rebuild_raw", "rebuild_runs", "split_valid"]
