"""Planning ISO-week flows (window "week") on raw data, from the manifest alone, like months.

A week touches one or two months. Its input fingerprint joins the fingerprints of the raw
partitions of those months (each input dataset's), so a week reruns when any month it spans
changed (new data, late data), and never otherwise; its inputs are both months' committed files,
which the executor filters to the week's rows (Monday 00:00 to the next Monday 00:00 UTC).
Like months: every complete week of a month with data, plus the open one; none that has not begun.
"""

from __future__ import annotations

import hashlib

from ingest.engine.fingerprint import code_fingerprint
from ingest.engine.windows import week_window, weeks_of_month
from ingest.flows.base import Flow
from partitions.manifest import ManifestReader, RawPartition, WindowTask


def plan_weeks(manifest: ManifestReader, flows: list[Flow], now_ms: int, fleet_id: str | None = None
               ) -> list[WindowTask]:
    weekly = [f for f in flows if f.window == "week"]
    if not weekly:
        return []
    raw: dict[tuple[str, str, str], RawPartition] = {}
    for p in manifest.raw_partitions(fleet_id):  # the newest commit of each (fleet, dataset, month)
        k = (p.fleet_id, p.dataset, p.month)
        if k not in raw or raw[k].seq < p.seq:
            raw[k] = p
    fps = {f.key: code_fingerprint(f.module) for f in weekly}
    runs = {(f"{r.flow}@{r.version}", r.fleet_id, r.window_key): r
            for r in manifest.current_windows([(f.name, f.version, fps[f.key]) for f in weekly])}
    tasks = []
    for f in weekly:
        fleets = sorted({fl for (fl, d, _m) in raw if d in f.inputs})
        for fleet in fleets:
            months = sorted({m for (fl, d, m) in raw if fl == fleet and d in f.inputs})
            for key in sorted({k for m in months for k in weeks_of_month(m, now_ms)}):
                w = week_window(key, now_ms)
                parts = [(d, raw.get((fleet, d, m))) for d in f.inputs for m in w.months]
                inputs = tuple((d, tuple(k for dd, p in parts if dd == d and p is not None for k in p.files))
                               for d in f.inputs)
                content = ",".join(f"{d}/{m}={p.fingerprint if p else '-'}"
                                   for (d, p), m in zip(parts, [m for _ in f.inputs for m in w.months]))
                input_fp = hashlib.blake2b(f"{key}|{content}".encode(), digest_size=20).hexdigest()
                current = runs.get((f.key, fleet, key))
                if current is not None and current.input_fp == input_fp:
                    continue
                tasks.append(WindowTask(f.name, f.version, fps[f.key], fleet, w.month, input_fp, inputs, key))
    return tasks
