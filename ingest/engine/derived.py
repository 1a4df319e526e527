"""Planning flows on flows: which windows of the flows that read other flows' outputs need a run.

A flow on flows (its inputs name "<flow>@<version>") is planned from the manifest alone, like a
raw flow, after the windows it reads: in the graph's order (ingest/flows/graph.py), each window's
input fingerprint joins the *content* of the upstream windows it reads (their output files,
named by the digest of their bytes, partitions/layout.py). So:

- an upstream window that reruns and writes byte-identical output leaves every dependant's input
  fingerprint as it was: nothing downstream reruns;
- one that writes something else changes exactly the fingerprints of the windows that read it:
  exactly those rerun;
- a window whose upstream is still waiting for a run (planned, or failed and planned again) waits
  too: it is planned once its inputs are current, never on a half-updated set.

Windows: a month flow on flows reads its month of each input; a quote flow the last N complete
months of each (ingest/engine/windows.py); a book flow every fleet's current quote window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ingest.engine.fingerprint import code_fingerprint
from ingest.engine.windows import BOOK, Window, book_window, month_window, quote_window
from ingest.flows.base import Flow
from ingest.flows.graph import ordered
from partitions.manifest import FlowRun, ManifestReader, WindowTask

Source = tuple[str, str]  # (fleet, window key) of an upstream window


def plan_derived(manifest: ManifestReader, flows: list[Flow], now_ms: int, quote_months: int,
                 waiting: Iterable[WindowTask] = (), fleet_id: str | None = None) -> list[WindowTask]:
    """Every window of the active flows on flows that needs a run now; `waiting` are windows already
    planned (of raw flows), whose dependants wait for them. One fleet's only when `fleet_id` is
    given, and the book's window (it is one window over every fleet)."""
    derived = [f for f in ordered(flows) if f.upstream]
    if not derived:
        return []
    fps = {f.key: code_fingerprint(f.module) for f in flows}
    runs: dict[tuple[str, str, str], FlowRun] = {
        (f"{r.flow}@{r.version}", r.fleet_id, r.window_key): r
        for r in manifest.current_windows([(f.name, f.version, fps[f.key]) for f in flows])}
    blocked = {(f"{t.flow}@{t.version}", t.fleet_id, t.window_key) for t in waiting}
    tasks: list[WindowTask] = []
    for f in derived:
        for fleet, w, sources in _windows(f, runs, now_ms, quote_months, fleet_id):
            if any((u, *s) in blocked for u in f.upstream for s in sources):
                blocked.add((f.key, fleet, w.key))  # its dependants wait with it
                continue
            inputs, content = [], []
            for u in f.upstream:
                files: list[str] = []
                for s in sources:
                    run = runs.get((u, *s))
                    if run is not None:
                        files += run.outputs
                        content.append(f"{u}/{s[0]}/{s[1]}={'+'.join(run.outputs)}")
                inputs.append((u, tuple(files)))
            if not any(files for _, files in inputs):
                continue  # nothing to read yet
            input_fp = hashlib.blake2b(",".join(content).encode(), digest_size=20).hexdigest()
            current = runs.get((f.key, fleet, w.key))
            if current is not None and current.input_fp == input_fp:
                continue
            tasks.append(WindowTask(f.name, f.version, fps[f.key], fleet, w.month, input_fp, tuple(inputs), w.key))
            blocked.add((f.key, fleet, w.key))
    return tasks


def _windows(f: Flow, runs: dict[tuple[str, str, str], FlowRun], now_ms: int, quote_months: int,
             fleet_id: str | None) -> list[tuple[str, Window, list[Source]]]:
    """(fleet, window, the upstream windows it reads) of each window of flow `f` that has inputs."""
    fleets = sorted({fl for (u, fl, _k) in runs if u in f.upstream and fl != BOOK
                     and (fleet_id is None or fl == fleet_id)})
    if f.window == "month":
        out = []
        for fleet in fleets:
            months = sorted({k for (u, fl, k) in runs if u in f.upstream and fl == fleet and ":" not in k})
            out += [(fleet, month_window(m, now_ms), [(fleet, m)]) for m in months]
        return out
    if f.window == "quote":
        q = quote_window(now_ms, quote_months)
        return [(fleet, q, [(fleet, m) for m in q.months]) for fleet in fleets]
    if f.window == "book":
        b = book_window(now_ms, quote_months)
        qkey = quote_window(now_ms, quote_months).key
        members = sorted({fl for (u, fl, k) in runs if u in f.upstream and k == qkey and fl != BOOK})
        return [(BOOK, b, [(fl, qkey) for fl in members])] if members else []
    raise ValueError(f"flow {f.key}: a flow on flows has a month, quote or book window, not {f.window}")
