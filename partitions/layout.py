"""Where things live in the store: the one module that builds storage keys.

Every dataset is a Delta Lake table, partitioned Hive style by fleet and month, so Athena, Spark,
Trino, Snowflake, polars and DuckDB find the live files through the table's log:

    raw/<dataset>/_delta_log/...                                         the table's log
    raw/<dataset>/fleet=<id>/month=<YYYY-MM>/part-<content hash>.parquet
    features/<flow>/v<version>/_delta_log/...
    features/<flow>/v<version>/fleet=<id>/month=<YYYY-MM>/part-<content hash>.parquet

Raw datasets: `pings` (canonical GPS pings), `events` (TSP safety events), `quarantine` (rows that
failed validation, with the reason), and drivers and hours of service: `assignments`, `hos_logs`,
`hos_violations` (month-partitioned like pings) and `drivers`, a snapshot (SNAPSHOT_DATASETS): one
partition per fleet, under the month it was taken in, replaced whole with the fleet's other
months by each pull. Stores written before the Delta tables also hold
`_commits/...` marker files; `partitions.migrate` reads them once and converts the store.
Every name is validated before it becomes part of a key.
"""

from __future__ import annotations

from common import names

COMMITS = "_commits"  # legacy commit markers (read only by the migration)
CONTROL = "_control"  # control records: fleets, sealed credentials and their data keys, used consents, pull
# checkpoints, pulled months, fired readiness thresholds, off-boarding audits (partitions/control_records.py,
# partitions/offboard.py)
READY_PROBE = "_ready-probe"  # a key /readyz asks about: the store answers, whatever it says
DELTA_LOG = "_delta_log"
FIRST_LOG_ENTRY = "00000000000000000000.json"  # a table's first commit: how tables are found
RAW_DATASETS = ("pings", "events", "quarantine", "drivers", "assignments", "hos_logs", "hos_violations")
SNAPSHOT_DATASETS = frozenset({"drivers"})  # one window per fleet: no history kept, only the newest pull's
PARTITION_COLUMNS = ("fleet", "month")


# ---------------------------------------------------------------------- tables
def raw_table(dataset: str) -> str:
    return f"raw/{names.dataset(dataset)}"


def feature_table(flow: str, version: int) -> str:
    return f"features/{names.flow_name(flow)}/v{int(version)}"


def parse_table(table: str) -> tuple[str, str, int | None]:
    """("raw", dataset, None) or ("features", flow, version) for a table key; ValueError otherwise."""
    parts = table.split("/")
    if len(parts) == 2 and parts[0] == "raw":
        return "raw", names.dataset(parts[1]), None
    if len(parts) == 3 and parts[0] == "features" and parts[2][:1] == "v" and parts[2][1:].isdigit():
        return "features", names.flow_name(parts[1]), int(parts[2][1:])
    raise ValueError(f"not a table key: {table[:120]!r}")


def view_name(table: str) -> str:
    """The SQL name of a table: `pings`, `events`, `quarantine`, `features_<flow>_v<n>`."""
    kind, name, version = parse_table(table)
    return name if kind == "raw" else f"features_{name}_v{version}"


def delta_log(table: str) -> str:
    return f"{table}/{DELTA_LOG}/"


def is_table_log_start(key: str) -> str | None:
    """The table key if `key` is the first commit of a table's log (how tables are discovered)."""
    head, sep, tail = key.rpartition(f"/{DELTA_LOG}/")
    if sep and tail == FIRST_LOG_ENTRY:
        try:
            parse_table(head)
        except ValueError:
            return None
        return head
    return None


# ---------------------------------------------------------------------- partitions and files
def partition_path(fleet_id: str, month: str) -> str:
    """A partition's directory relative to its table (the path Delta add actions carry)."""
    return f"fleet={names.fleet_id(fleet_id)}/month={names.month(month)}/"


def part_name(content_hash: str) -> str:
    if not content_hash.isalnum():
        raise ValueError("content hash must be alphanumeric")
    return f"part-{content_hash}.parquet"


def raw_prefix(dataset: str, fleet_id: str, month: str) -> str:
    return f"{raw_table(dataset)}/{partition_path(fleet_id, month)}"


def raw_file(dataset: str, fleet_id: str, month: str, content_hash: str) -> str:
    return f"{raw_prefix(dataset, fleet_id, month)}{part_name(content_hash)}"


def feature_prefix(flow: str, version: int, fleet_id: str, month: str) -> str:
    return f"{feature_table(flow, version)}/{partition_path(fleet_id, month)}"


def feature_file(flow: str, version: int, fleet_id: str, month: str, content_hash: str) -> str:
    return f"{feature_prefix(flow, version, fleet_id, month)}{part_name(content_hash)}"


def split_file(key: str) -> tuple[str, str, str, str]:
    """(table, fleet_id, month, path relative to the table) of a data file key."""
    head, sep, rest = key.partition("/fleet=")
    fleet, sep2, tail = rest.partition("/month=")
    month, sep3, _name = tail.partition("/")
    if not (sep and sep2 and sep3):
        raise ValueError(f"not a partition file key: {key[:120]!r}")
    parse_table(head)
    return head, names.fleet_id(fleet), names.month(month), key[len(head) + 1:]


# ---------------------------------------------------------------------- legacy markers
def raw_marker(dataset: str, fleet_id: str, month: str, seq: int) -> str:
    return f"{COMMITS}/{raw_prefix(dataset, fleet_id, month)}{seq:010d}.json"


def feature_marker(flow: str, version: int, fleet_id: str, month: str, run_id: str) -> str:
    if not run_id.isalnum():
        raise ValueError("run id must be alphanumeric")
    return f"{COMMITS}/{feature_prefix(flow, version, fleet_id, month)}{run_id}.json"


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


def fleet_key(fleet_id: str) -> str:
    return f"{CONTROL}/fleets/{names.fleet_id(fleet_id)}.json"


def credentials_key(fleet_id: str) -> str:
    return f"{CONTROL}/credentials/{names.fleet_id(fleet_id)}.sealed"


def data_key_key(fleet_id: str) -> str:
    """The fleet's data key, sealed with the master key (partitions/keyring.py)."""
    return f"{CONTROL}/keys/{names.fleet_id(fleet_id)}.key"


def months_key(fleet_id: str) -> str:
    """The fleet's pulled months (manifest `fleet_months`), rewritten whole when one is added."""
    return f"{CONTROL}/months/{names.fleet_id(fleet_id)}.json"


def readiness_key(fleet_id: str) -> str:
    """The fleet's fired readiness thresholds (manifest `readiness_fired`), rewritten whole on each change."""
    return f"{CONTROL}/readiness/{names.fleet_id(fleet_id)}.json"


def checkpoints_key(fleet_id: str, record_id: str) -> str:
    """One group of a fleet's completed pull slices (append-only: one record per pull commit)."""
    if not record_id.isalnum():
        raise ValueError("a checkpoint record id is alphanumeric")
    return f"{checkpoints_prefix(fleet_id)}{record_id}.json"


def checkpoints_prefix(fleet_id: str) -> str:
    return f"{CONTROL}/checkpoints/{names.fleet_id(fleet_id)}/"


def offboarding_key(fleet_id: str, at_compact: str) -> str:
    """The audit record of an off-boarding: the one key an off-boarded fleet leaves behind."""
    if not at_compact.isalnum():
        raise ValueError("an audit time stamp is compact (YYYYMMDDTHHMMSSZ)")
    return f"{CONTROL}/offboarded/{names.fleet_id(fleet_id)}-{at_compact}.json"


def fleet_segment(fleet_id: str) -> str:
    """The path segment every partition of a fleet has in its key (tables, legacy markers)."""
    return f"fleet={names.fleet_id(fleet_id)}/"


def consent_key(nonce: str) -> str:
    if not nonce or not all(c.isalnum() or c in "-_" for c in nonce):
        raise ValueError("a consent nonce is url-safe base64")
    return f"{CONTROL}/consents/{nonce}.json"
