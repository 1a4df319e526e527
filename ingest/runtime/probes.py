"""/readyz's dependency probes: each with a deadline, all at once, none piling up behind a hung one.

- A probe runs on a thread of its own, never on the pool that answers the API: a store that accepts
  connections and never answers must not take the threads every other request needs. The thread
  is a daemon thread, so a hung probe never holds up the process's exit either.
- A probe still running from an earlier /readyz is waited on again, not started twice: a hung store
  costs one thread however often /readyz is asked, and answers the moment it answers that call.
- A probe that does not answer within `timeout_s` is a failing dependency, named by what it asks
  and never by its URL or keys: "store: no answer within 1.5 s (s3 endpoint; ...)". A probe with a
  `max_age_s` (the manifest's, which copies and reads the whole file) may answer with its last
  result instead, when that is recent: a big healthy manifest is not called hung for being big.
- A probe that raises is a failing dependency named with the error's type, not its message (which
  can carry a path, a bucket or a key).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common.disk import free_bytes
from ingest.runtime.app import App
from partitions import layout
from partitions.store import LocalStore

Check = Callable[[], list[str]]  # the problems found, each a line that names the dependency


@dataclass(frozen=True)
class Probe:
    name: str  # "manifest", "store", "disk": how /readyz names the dependency
    what: str  # what it asks, for a probe that does not answer: "s3 endpoint", "file store", ...
    check: Check
    max_age_s: float = 0.0  # a completed result this recent answers while a new check is slow


class Probes:
    def __init__(self, probes: list[Probe], timeout_s: float) -> None:
        self.probes = probes
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: dict[str, Future[list[str]]] = {}
        self._last: dict[str, tuple[float, list[str]]] = {}  # name -> (monotonic time, problems)

    def _future(self, probe: Probe) -> Future[list[str]]:
        with self._lock:
            fut = self._running.get(probe.name)
            if fut is not None and not fut.done():
                return fut
            fut = self._running[probe.name] = Future()

        def run() -> None:
            fut.set_running_or_notify_cancel()
            try:
                result = probe.check()
            except Exception as e:  # noqa: BLE001 - a probe that raises is a failing dependency
                result = [f"{probe.name}: {type(e).__name__}"]
            with self._lock:
                self._last[probe.name] = (time.monotonic(), result)
            fut.set_result(result)

        threading.Thread(target=run, name=f"fleetlake-probe-{probe.name}", daemon=True).start()
        return fut

    async def problems(self) -> list[str]:
        """Every probe's problems, in probe order, within about `timeout_s` whatever the probes do."""
        waiting = [(p, asyncio.wrap_future(self._future(p))) for p in self.probes]
        if waiting:
            await asyncio.wait([f for _, f in waiting], timeout=self.timeout_s)
        out: list[str] = []
        for probe, fut in waiting:
            if fut.done():
                out.extend(fut.result())
                continue
            # Not cancelled: the probe's thread and its future go on, for the next call to wait on.
            with self._lock:
                last = self._last.get(probe.name)
            if last is not None and time.monotonic() - last[0] <= probe.max_age_s:
                out.extend(last[1])
            else:
                out.append(f"{probe.name}: no answer within {self.timeout_s:g} s ({probe.what}; "
                           "FLEETLAKE_READYZ_TIMEOUT_S)")
        return out


def daemon_probes(app: App) -> Probes:
    """The daemon's dependencies: its manifest file, its object store, its local disk."""
    s = app.settings
    store = app.store

    def manifest() -> list[str]:
        damage = app.manifest.check_file()
        return [f"manifest: damaged ({damage}); stop fleetlake and run `fleetlake manifest rebuild`"] if damage else []

    def store_answers() -> list[str]:
        store.exists(layout.READY_PROBE)  # whatever it says: the store answered
        return []

    def disk() -> list[str]:
        out = []
        floor = s.min_free_disk_mb * (1 << 20)
        dirs = [("FLEETLAKE_DATA_DIR", s.data_dir)]
        if isinstance(store, LocalStore):
            dirs.append(("FLEETLAKE_STORE_URL", store.root))
        seen: set[int | None] = set()
        for setting, path in dirs:
            device = _device(path)
            if device in seen:
                continue  # the store under the data dir (the default): one disk, said once
            seen.add(device)
            free = free_bytes(path)
            if free is not None and free < floor:
                out.append(f"disk: {free / (1 << 20):.1f} MB free under {setting}, below "
                           f"FLEETLAKE_MIN_FREE_DISK_MB={s.min_free_disk_mb:g}")
        trouble = app.disk.trouble
        if trouble is not None:
            out.append(f"disk: {trouble.error} at {_utc(trouble.at)}; clears when a pull or feature pass succeeds")
        return out

    kind = "s3 endpoint" if store.url.startswith("s3://") else "file store"
    return Probes([Probe("manifest", "manifest file", manifest, max_age_s=60.0), Probe("store", kind, store_answers),
                   Probe("disk", "local disk", disk)], s.readyz_timeout_s)


def _device(path: Path) -> int | None:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return p.stat().st_dev
    except OSError:
        return None


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
