"""Which (flow, version, fleet, month) windows need a run: one set-based query for all fleets
(`ManifestReader.pending_windows`), here given the active flows and their code fingerprints.

A window needs a run when no successful run exists with the same (flow, version, code
fingerprint, fleet, month, input fingerprint). The input fingerprint joins the fingerprints of
the flow's input datasets for that month, so new data, late data, a code change or a new
version each rerun exactly the windows they touch. Planning reads only the manifest: a run
where nothing changed opens no Parquet file.

Flows on flows (quote windows, the book) are planned from their upstream runs once these are
current: ingest/engine/derived.py.

The open (current) month is planned like any other: every refresh changes its input
fingerprint, so it is recomputed, with `complete_month = false` in its output until it closes.
"""

from __future__ import annotations

import time

from common.errors import FlowError
from ingest.engine.fingerprint import LEGACY, code_fingerprint
from ingest.engine.weeks import plan_weeks
from ingest.flows.base import Flow
from partitions.manifest import ActiveInput, Manifest, ManifestReader, WindowTask


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


def plan(manifest: ManifestReader, flows: list[Flow], fleet_id: str | None = None, check: bool = True,
         now_ms: int | None = None) -> list[WindowTask]:
    """Every window that needs a run, or one fleet's only (the same query, filtered before it
    groups: a status call costs one fleet's rows, not the book's). `check` first checks the flows'
    schemas, which writes: the writer only (read views pass False). ISO-week flows are planned from
    the same manifest rows (ingest/engine/weeks.py): the weeks begun by `now_ms` (default: now)."""
    if check:
        if not isinstance(manifest, Manifest):
            raise TypeError("checking the flows' schemas records them: it needs the writer, not a read view")
        check_flows(manifest, flows)
    weeks = plan_weeks(manifest, flows, int(time.time() * 1000) if now_ms is None else now_ms, fleet_id)
    return manifest.pending_windows(active_inputs(flows), fleet_id) + weeks


def active_inputs(flows: list[Flow]) -> list[ActiveInput]:
    """(flow, version, code fingerprint, input dataset) of each input of each active flow version on raw
    data over months: what the manifest's set-based queries (the plan, the book's ready months) take as the
    active flows. Flows on flows are planned after them (ingest/engine/derived.py); weeks apart (weeks.py)."""
    return [(f.name, f.version, code_fingerprint(f.module), d) for f in flows
            if not f.upstream and f.window == "month" for d in f.inputs]
