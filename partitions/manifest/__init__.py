"""The DuckDB manifest: fleetlake's memory of what it pulled and computed.

    file.py        the file's life: writer lock, creation aside, integrity check, damage, 0600
    migrations.py  the schema, as numbered migrations
    records.py     one frozen dataclass per kind of row (fleets, raw partitions, runs, audits, ...)
    reader.py      ManifestReader: every typed query, none that writes (what a read view hands out)
    writer.py      Manifest: the one writer, which extends the reader; replace_manifest

All times are stored as TIMESTAMP in UTC (DuckDB hands TIMESTAMPTZ to Python only through
pytz, which fleetlake does not need otherwise) and come back timezone-aware.
"""

from partitions.manifest.file import manifest_damage
from partitions.manifest.migrations import MIGRATIONS, SCHEMA_VERSION
from partitions.manifest.reader import ActiveInput, ManifestReader
from partitions.manifest.records import (
    Fleet,
    FleetLanding,
    FlowRun,
    Offboarding,
    RawPartition,
    RunAttempt,
    RunLine,
    WindowTask,
)
from partitions.manifest.writer import Manifest, replace_manifest, writer_lock

__all__ = ["ActiveInput", "Fleet", "FleetLanding", "FlowRun", "MIGRATIONS", "Manifest", "ManifestReader",
           "Offboarding", "RawPartition", "RunAttempt", "RunLine", "SCHEMA_VERSION", "WindowTask",
           "manifest_damage", "replace_manifest", "writer_lock"]
