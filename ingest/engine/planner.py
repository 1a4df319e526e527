"""Which (flow, version, fleet, month) windows need a run: one set-based query for all fleets.

A window needs a run when no successful run exists with the same (flow, version, code
fingerprint, fleet, month, input fingerprint). The input fingerprint joins the fingerprints of
the flow's input datasets for that month, so new data, late data, a code change or a new
version each rerun exactly the windows they touch. Planning reads only the manifest: a run
where nothing changed opens no Parquet file.

The open (current) month is planned like any other: every refresh changes its input
fingerprint, so it is recomputed, with `complete_month = false` in its output until it closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from common.errors import FlowError
from ingest.engine.fingerprint import LEGACY, code_fingerprint
from ingest.flows.base import Flow
from partitions.manifest import Manifest

_PLAN_SQL = """
WITH inputs AS (
    SELECT a.flow, a.version, a.code_fp, r.fleet_id, r.month,
           string_agg(r.dataset || ':' || r.fingerprint, ',' ORDER BY r.dataset) AS input_fp,
           list(r.dataset ORDER BY r.dataset) AS datasets,
           list(r.files ORDER BY r.dataset) AS files
    FROM raw_partitions r
    JOIN active_flows a ON r.dataset = a.dataset
    WHERE $1::VARCHAR IS NULL OR r.fleet_id = $1::VARCHAR  -- $1: one fleet, or NULL for all
    GROUP BY a.flow, a.version, a.code_fp, r.fleet_id, r.month
)
SELECT i.flow, i.version, i.code_fp, i.fleet_id, i.month, i.input_fp, i.datasets, i.files
FROM inputs i
WHERE NOT EXISTS (
    SELECT 1 FROM flow_runs f
    WHERE f.status = 'succeeded' AND f.flow = i.flow AND f.version = i.version AND f.code_fp = i.code_fp
      AND f.fleet_id = i.fleet_id AND f.month = i.month AND f.input_fp = i.input_fp)
ORDER BY i.fleet_id, i.month, i.flow, i.version
"""


@dataclass(frozen=True)
class WindowTask:
    flow: str
    version: int
    code_fp: str
    fleet_id: str
    month: str
    input_fp: str
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # (dataset, committed files)


def check_flows(manifest: Manifest, flows: list[Flow]) -> None:
    """Refuse an output schema that changed without a version bump; remember new ones."""
    seen: set[tuple[str, int]] = set()
    for f in flows:
        if (f.name, f.version) in seen:
            raise FlowError(f"flow {f.name} v{f.version} is active twice")
        seen.add((f.name, f.version))
        known = manifest.flow_schema(f.name, f.version)
        if known is not None and known != f.schema_fingerprint:
            raise FlowError(f"flow {f.name} v{f.version}: its output schema changed but its version did not; "
                            f"bump the version to v{f.version + 1} (outputs of v{f.version} stay as they are)")
    for f in flows:
        manifest.record_flow_schema(f.name, f.version, f.schema_fingerprint)
    # Runs keyed by an earlier fingerprint scheme of the same code are current: re-key, never recompute.
    legacy = [(f.name, f.version, old, new) for f in flows for old, new in LEGACY.get((f.name, f.version), {}).items()]
    if legacy:
        manifest.rekey_code_fingerprints(legacy)


def plan(manifest: Manifest, flows: list[Flow], fleet_id: str | None = None, check: bool = True
         ) -> list[WindowTask]:
    """Every window that needs a run, or one fleet's only (the same query, filtered before it
    groups: a status call costs one fleet's rows, not the book's). `check=False` skips the
    schema check, which writes: for read-only views (`Manifest.reading()`)."""
    if check:
        check_flows(manifest, flows)
    active = pa.table({
        "flow": [f.name for f in flows for _ in f.inputs],
        "version": pa.array([f.version for f in flows for _ in f.inputs], pa.int32()),
        "code_fp": [code_fingerprint(f.module) for f in flows for _ in f.inputs],
        "dataset": [d for f in flows for d in f.inputs],
    })
    rows = manifest.query_with("active_flows", active, _PLAN_SQL, [fleet_id])
    return [WindowTask(r[0], int(r[1]), r[2], r[3], r[4], r[5],
                       tuple((d, tuple(files)) for d, files in zip(r[6], r[7]))) for r in rows]
