"""Rebuild the manifest's raw partitions and feature runs from the commit markers in the store alone.

A container that lost its disk runs `fleetlake manifest rebuild` and then recomputes nothing
that was already done: for each window the newest marker names the committed files, rows and
fingerprint, exactly as the manifest had them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from common.errors import StoreError
from partitions import layout
from partitions.manifest import Manifest, RawPartition
from partitions.store import ObjectStore


@dataclass(frozen=True)
class RebuildReport:
    windows: int
    markers_read: int
    problems: tuple[str, ...]


def rebuild_raw(store: ObjectStore, manifest: Manifest) -> RebuildReport:
    latest: dict[tuple[str, str, str], tuple[int, str]] = {}
    markers = 0
    for obj in store.list(f"{layout.COMMITS}/raw/"):
        parsed = layout.parse_raw_marker(obj.key)
        if parsed is None:
            continue
        markers += 1
        dataset, fleet, month, seq = parsed
        if seq > latest.get((dataset, fleet, month), (0, ""))[0]:
            latest[(dataset, fleet, month)] = (seq, obj.key)
    partitions: list[RawPartition] = []
    problems: list[str] = []
    for (dataset, fleet, month), (seq, key) in sorted(latest.items()):
        try:
            part = RawPartition.from_json(json.loads(store.get(key)))
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{key}: unreadable marker ({type(e).__name__})")
            continue
        if (part.dataset, part.fleet_id, part.month, part.seq) != (dataset, fleet, month, seq):
            problems.append(f"{key}: marker content does not match its key")
            continue
        missing = [f for f in part.files if not store.exists(f)]
        if missing:
            problems.append(f"{key}: data files missing: {', '.join(missing)}")
            continue
        partitions.append(part)
    manifest.restore_raw(partitions)
    return RebuildReport(len(partitions), markers, tuple(problems))


_RUN_FIELDS = ("run_id", "flow", "version", "code_fp", "fleet_id", "month", "input_fp", "outputs")


def rebuild_runs(store: ObjectStore, manifest: Manifest) -> RebuildReport:
    """Succeeded feature runs from `_commits/features/...` markers whose outputs still exist.

    With them the planner knows which windows are done, so a rebuilt manifest recomputes nothing.
    """
    runs: list[dict] = []
    problems: list[str] = []
    markers = 0
    for obj in store.list(f"{layout.COMMITS}/features/"):
        if not obj.key.endswith(".json"):
            continue
        markers += 1
        try:
            run = json.loads(store.get(obj.key))
            if any(f not in run for f in _RUN_FIELDS):
                raise KeyError("missing fields")
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable marker ({type(e).__name__})")
            continue
        missing = [f for f in run["outputs"] if not store.exists(f)]
        if missing:
            problems.append(f"{obj.key}: outputs missing: {', '.join(missing)}")
            continue
        stamp = run.get("committed_at")
        run["committed_at"] = datetime.fromisoformat(stamp) if stamp else datetime.now(timezone.utc)
        runs.append(run)
    added = manifest.restore_runs(runs)
    return RebuildReport(added, markers, tuple(problems))
