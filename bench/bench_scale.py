"""Many fleets at once: refresh wall time of N sandbox fleets, and API status latency under a backfill.

Refresh: N small sandbox fleets (half Samsara, half Motive; 2 vehicles, 60 s pings, one month of
history), each paced by its TSP's published per-token limit (Samsara 20/s, Motive 10/s, enforced by
the sandbox per token and by our throttle). All are backfilled (not timed), the sandbox clock moves
a month, and then, from copies of that same state:

- together: the daemon's own workers (`Daemon.start_workers`, FLEETLAKE_MAX_CONCURRENT_FLEETS = N)
  refresh every fleet; wall time, process CPU time, requests served;
- alone: each of up to --singles fleets refreshed by itself; their median, slowest and the sum
  (for N above --singles the sum is N x their mean, said so).

Bound: the rate floor is the slowest fleet's requests / its token's rate (no pacing can beat it);
CPU-bound means process CPU seconds / cores approaches the wall time. CPU time covers the sandbox
too (it runs in this process), so it over-states the client's.

With --sandbox-process the sandbox runs in a process of its own (this file, --serve-sandbox), as
`fleetlake sandbox` does, so its event loop does not share a GIL with the daemon under test; the
bench then moves its clock, reads its counters and drops its page caches over HTTP.

Status latency: --requests GET /fleets/<id>/status (over HTTP, --clients at a time) against the
daemon's API while N fleets backfill, and idle, same run; medians and p95.

    python bench/bench_scale.py [--fleets 1,4,16,64] [--singles 4] [--requests 200] [--sandbox-process]
        [--replay] [--pull-executor process] [--pull-workers 2] [--compare-workers]

--targets measures the issue's two goals with the replay TSP, each a median of --repeats runs
from copies of one state, the load average printed beside every run (the machine is shared):
(a) --together fleets (16) refreshed together vs each of --singles fleets alone (one per TSP by
default: fleets of one TSP are alike), the median of each fleet's runs, the slowest of those;
(b) --throughput fleets (64) refreshed with 2 pull worker processes vs 1 (runs alternated, so
the load drifts over both alike). Each run prints the daemon's CPU split into its own process
(coordination: tokens, commits, manifest) and its pull workers, and the fake's CPU per request.
(c) follows (b): the pull workers alone. The slices one refresh of those fleets submits are
recorded (the refresh runs as usual), then run again, straight on 1 and on 2 fresh worker
processes, each fleet's lane one slice at a time as the pipeline runs it, with nothing else of the
daemon running. On two cores (b) cannot show what a second process buys when the daemon's own
process needs about as much CPU as every pull worker together; (c) shows whether the part meant
to scale does, and prints the daemon's process CPU from (b) beside it as the serial part.
--profile DIR records the daemon's process with py-spy during the first run of each (raw
stacks, DIR/<what>.raw); --profile-gil samples only the thread holding the GIL, --profile-native
adds the C frames (DuckDB, delta-rs, Arrow) under each Python call.

With --replay the fleets are served by the replay TSP (sandbox/replay.py) in front of a sandbox
process: a warm-up refresh renders every page once, the measured runs get them from the replay
(its CPU per request is printed beside the daemon's). The daemon's CPU is its process plus its
pull worker processes. "nothing new" is a second refresh of the same state. --compare-workers
refreshes the largest N again with one pull worker, from a copy of the same state.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import httpx
import uvicorn
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingest.pull.slices import SliceResult, SliceTask
from ingest.pull.workers import SLICE_LANES, ProcessWorkers, default_threads
from ingest.runtime.app import App, open_app
from ingest.runtime.daemon import Daemon
from ingest.runtime.pipeline import Pipeline
from ingest.surfaces.api import create_app
from ingest.wiring.settings import Settings, load_settings
from sandbox.motive_api import MotiveApp
from sandbox.samsara_api import SamsaraApp
from sandbox.server import SandboxServer
from sandbox.simulator import FleetSpec
from sandbox.world import SandboxConfig, SandboxFleet, default_config

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
RATES = {"samsara": 20.0, "motive": 10.0}  # connectors/providers.py TSPS: what the TSPs publish
TOKEN = "bench-scale"
KEY = Fernet.generate_key().decode()


def _fleets(n: int) -> tuple[SandboxFleet, ...]:
    base = default_config(seed=3, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    start = base.fleets[0].spec.history_start
    return tuple(SandboxFleet(FleetSpec(f"fleet-{i:03d}", 100 + i, 2, start, 60), ("samsara", "motive")[i % 2],
                              f"fleet {i}") for i in range(n))


PULL: dict[str, object] = {"pull_executor": "process", "pull_workers": None}  # set from the command line
FAKES: set[int] = set()  # the sandbox's and the replay's pids: not the daemon's CPU


def _settings(data: Path, sandbox_url: str, workers: int, **pull: object):  # type: ignore[no-untyped-def]
    return load_settings(data_dir=data, sandbox_url=sandbox_url, history_months=1, token_key=KEY,
                         max_concurrent_fleets=workers, api_token=TOKEN, **{**PULL, **pull})


def _descendants_cpu() -> float:
    """CPU seconds of this process's living descendants (pull workers, the forkserver), fakes excluded."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(f[1])
        cpu[int(d.name)] = (int(f[11]) + int(f[12])) / tick
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p in parent and p not in (me, 0, 1) and p not in FAKES:
            p = parent[p]
        if p == me and pid != me and pid not in FAKES:
            total += cpu[pid]
    return total


def _drain(daemon: Daemon) -> None:
    """Until no pull or refresh is queued or running (features have their own worker)."""
    while True:
        s = daemon.queue.snapshot()
        if not [k for k in (*s.queued, *s.running_all) if not k.startswith("features")]:
            return
        time.sleep(0.05)


PROFILE_GIL = [False]  # --profile-gil
PROFILE_NATIVE = [False]  # --profile-native
LAST_CPU = [0.0, 0.0]  # the daemon's CPU of the last _run: its process + its pull workers, then its process alone
LAST_SYS = [0.0]  # of the daemon's process CPU in the last _run, the kernel's (fsync, futex hand-offs of its threads)


@contextlib.contextmanager
def _py_spy(out: Path | None) -> Iterator[None]:
    """py-spy recording this process (the daemon) while the block runs: raw stacks per thread, idle left out."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    gil = ["--gil"] if PROFILE_GIL[0] else []  # only the thread holding the GIL: where the CPU goes, not the waits
    gil += ["--native"] if PROFILE_NATIVE[0] else []  # C frames too: DuckDB, delta-rs and Arrow under a Python call
    spy = subprocess.Popen(["py-spy", "record", "-r", "200", "-f", "raw", "--threads", *gil, "-o", str(out),
                            "--pid", str(os.getpid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    FAKES.add(spy.pid)  # its CPU is not the daemon's
    time.sleep(1.0)  # attached before the work starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(timeout=60)


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by its kernel id."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for d in Path("/proc/self/task").iterdir():
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d.name)] = (int(f[11]) + int(f[12])) / tick
    return out


def _by_thread(before: dict[int, float], after: dict[int, float]) -> str:
    """Where the daemon's own CPU went, by thread kind: its Python threads by name, native ones (DuckDB, delta-rs, Arrow)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    groups: dict[str, float] = {}
    for tid, cpu in after.items():
        name = names.get(tid, "native (DuckDB, delta-rs, Arrow)")
        kind = name.rstrip("0123456789-_").removesuffix("-fleet") or name
        groups[kind] = groups.get(kind, 0.0) + cpu - before.get(tid, 0.0)
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 0.05)


def _run(settings, submit: Callable[[Pipeline], object], profile: Path | None = None) -> float:  # type: ignore[no-untyped-def]
    """The daemon's workers on a fresh app (a daemon's shutdown closes its queue): the wall time of the work."""
    with open_app(settings, flows=[]) as app:
        daemon = Daemon(app)
        daemon.start_workers()
        if app.pulls.workers() is not None:
            time.sleep(1.0)  # the worker processes start before the clock does (the daemon starts them once)
        with _py_spy(profile):
            threads0 = _thread_cpu()
            own0 = time.process_time()
            sys0 = os.times().system
            c0 = own0 + _descendants_cpu()
            t0 = time.perf_counter()
            submit(daemon.pipeline)
            _drain(daemon)
            took = time.perf_counter() - t0
            own1 = time.process_time()
            LAST_CPU[:] = [own1 + _descendants_cpu() - c0, own1 - own0]
            LAST_SYS[0] = os.times().system - sys0
            if profile is not None:
                print(f"  the daemon's process by thread: {_by_thread(threads0, _thread_cpu())}", flush=True)
        daemon.shutdown()
    bad = {k: str(r) for k, r in daemon.queue.snapshot().last.items() if not str(r).startswith("ok")}
    if bad:
        raise RuntimeError(f"work failed, timings would mean nothing: {bad}")
    return took


def _consent_all(app: App, fleets: tuple[SandboxFleet, ...]) -> None:
    for f in fleets:
        url = app.onboarding.consent_url(f.tsp, f.spec.fleet_id) + f"&fleet={f.spec.fleet_id}"
        q = httpx.URL(httpx.get(url).headers["location"]).params
        app.onboarding.complete_consent(f.tsp, q["code"], q["state"])


def _cold(server: SandboxServer) -> None:
    """Drop the sandbox's rendered-page caches: each measured run asks it for pages never served."""
    for o in gc.get_objects():
        if isinstance(o, (SamsaraApp, MotiveApp)):
            o._cache.clear()


def _config(fleets: tuple[SandboxFleet, ...]) -> SandboxConfig:
    # Tokens outlive the moved clock: the two copies of the state hold the same refresh token,
    # which a refresh would rotate under the other's feet.
    return replace(default_config(now=NOW), fleets=fleets, samsara_rate_per_s=RATES["samsara"],
                   motive_rate_per_s=RATES["motive"], samsara_token_ttl_s=10**9, motive_token_ttl_s=10**9)


class Sandbox:
    """The sandbox the bench talks to: in this process, or its own process over HTTP."""

    def __init__(self, base_url: str, server: SandboxServer | None, pid: int | None = None,
                 replay_pid: int | None = None) -> None:
        self.base_url = base_url
        self._server = server
        self._pid = pid
        self.replay_pid = replay_pid

    def replay_stats(self) -> dict[str, float]:
        return httpx.get(f"{self.base_url}/_replay/stats").json() if self.replay_pid else {}

    def cpu_s(self) -> float:
        """CPU seconds of the sandbox's own process (0 in this process: process_time covers it)."""
        if self._pid is None:
            return 0.0
        fields = Path(f"/proc/{self._pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def advance_month(self) -> None:
        if self._server is not None:
            self._server.world.clock.advance_months(1)
        else:
            httpx.post(f"{self.base_url}/_sandbox/clock", json={"advance_months": 1}).raise_for_status()

    def cold(self) -> None:
        if self.replay_pid is not None:
            return  # the replay serves what it recorded: the warm-up run rendered it
        if self._server is not None:
            _cold(self._server)
        else:
            httpx.post(f"{self.base_url}/_bench/cold").raise_for_status()

    def requests(self) -> dict[str, int]:
        stats = self._server.world.stats if self._server is not None else \
            httpx.get(f"{self.base_url}/_sandbox/stats").json()
        return {t: int(stats.get(t, {}).get("requests", 0)) for t in RATES}


@contextlib.contextmanager
def sandbox(n: int, own_process: bool, replay: bool = False) -> Iterator[Sandbox]:
    if replay:
        with sandbox(n, True) as upstream:
            assert upstream._pid is not None
            child = subprocess.Popen([sys.executable, "-m", "sandbox.replay", "--upstream", upstream.base_url,
                                      "--samsara-rate", str(RATES["samsara"]), "--motive-rate", str(RATES["motive"])],
                                     stdout=subprocess.PIPE, text=True)
            FAKES.update({upstream._pid, child.pid})
            try:
                assert child.stdout is not None
                yield Sandbox(json.loads(child.stdout.readline())["base_url"], None, upstream._pid, child.pid)
            finally:
                child.terminate()
                child.wait(timeout=30)
        return
    if not own_process:
        with SandboxServer(_config(_fleets(n))) as server:
            yield Sandbox(server.base_url, server)
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield Sandbox(json.loads(child.stdout.readline())["base_url"], None, child.pid)
    finally:
        child.terminate()
        child.wait(timeout=30)


def serve_sandbox(n: int) -> None:
    """The --sandbox-process child: the bench's sandbox until SIGTERM, plus a route that drops its page caches."""
    server = SandboxServer(_config(_fleets(n)))

    async def cold(request: Request) -> JSONResponse:
        _cold(server)
        return JSONResponse({"cold": True})

    app = server._server.config.app  # the sandbox's Starlette app, not loaded until the server runs
    assert isinstance(app, Starlette)
    app.router.routes.append(Route("/_bench/cold", cold, methods=["POST"]))
    server.serve_until_signalled(lambda s: print(json.dumps({"base_url": s.base_url}), flush=True))


def refresh(n: int, singles: int, own_process: bool, replay: bool = False, compare_workers: bool = False) -> None:
    fleets = _fleets(n)
    with sandbox(n, own_process, replay) as sb, tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed"
        with open_app(_settings(seed, sb.base_url, n), flows=[]) as app:
            _consent_all(app, fleets)
        _run(_settings(seed, sb.base_url, n), lambda p: [p.backfill(f.spec.fleet_id) for f in fleets])
        sb.advance_month()
        names = ["together", "alone", "warm", "one-worker", "nothing-new"]
        for name in names:
            shutil.copytree(seed, Path(tmp) / name)
        if replay:  # the replay records every page of the refresh once; the measured runs get them from it
            _run(_settings(Path(tmp) / "warm", sb.base_url, n), lambda p: p.refresh())

        sb.cold()
        before, rs0 = sb.requests(), sb.replay_stats()
        sb_cpu0 = sb.cpu_s()
        wall = _run(_settings(Path(tmp) / "together", sb.base_url, n), lambda p: p.refresh())
        cpu, sb_cpu = LAST_CPU[0], sb.cpu_s() - sb_cpu0
        after, rs1 = sb.requests(), sb.replay_stats()
        served = {t: after[t] - before[t] for t in RATES}
        # A second refresh of the same state: nothing new at the TSP (the per-fleet floor).
        idle_wall = _run(_settings(Path(tmp) / "together", sb.base_url, n), lambda p: p.refresh())
        idle_cpu = LAST_CPU[0]

        alone = []
        for f in fleets[:singles]:
            sb.cold()
            alone.append(_run(_settings(Path(tmp) / "alone", sb.base_url, 1),
                              lambda p: p.refresh(f.spec.fleet_id)))  # noqa: B023 - run before the loop moves on
        one = None
        if compare_workers and PULL["pull_executor"] == "process":
            one = _run(_settings(Path(tmp) / "one-worker", sb.base_url, n, pull_workers=1), lambda p: p.refresh())
    per_tsp = {t: sum(1 for f in fleets if f.tsp == t) for t in RATES}
    floor = max((served[t] / per_tsp[t]) / RATES[t] for t in RATES if per_tsp[t])
    total = sum(alone) if len(alone) == n else n * statistics.mean(alone)
    cores = os.cpu_count() or 1
    fake = (f"replay {(rs1['cpu_s'] - rs0['cpu_s']) / max(1, rs1['requests'] - rs0['requests']) * 1e6:.0f} us/request "
            f"({rs1['misses'] - rs0['misses']} misses) + sandbox {sb_cpu:.1f}s" if replay else f"sandbox {sb_cpu:5.1f}s")
    print(f"{n:3d} fleets ({PULL['pull_executor']}, {PULL['pull_workers'] or 'one per core'} workers): together "
          f"{wall:6.1f}s | alone: median {statistics.median(alone):5.1f}s, slowest "
          f"{max(alone):5.1f}s, sum {total:6.1f}s{'' if len(alone) == n else f' (est. {n} x mean of {len(alone)})'}"
          f" | together/slowest {wall / max(alone):4.2f}x (goal <= 1.5x), sum/together {total / wall:4.1f}x | rate "
          f"floor {floor:5.1f}s ({served} requests) | CPU: daemon {cpu:5.1f}s ({cpu / n:.2f}s/fleet), fake: {fake}; "
          f"{cores} cores", flush=True)
    print(f"     nothing new: {idle_wall:5.1f}s wall, daemon CPU {idle_cpu:5.2f}s = {idle_cpu / n:.3f}s/fleet "
          f"(goal <= 0.1 s)", flush=True)
    if one is not None:
        print(f"     {n} fleets with 1 pull worker {one:6.1f}s vs with {PULL['pull_workers'] or 'one per core'}: "
              f"{wall:6.1f}s = {one / wall:4.2f}x the throughput (goal >= 1.7x with 2)", flush=True)


def _load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def _fake(r0: dict[str, float], r1: dict[str, float]) -> tuple[float, int, int]:
    """The replay's CPU seconds, requests and bytes served between two of its /_replay/stats."""
    return r1["cpu_s"] - r0["cpu_s"], int(r1["requests"] - r0["requests"]), int(r1["bytes"] - r0["bytes"])


def _timed(sb: Sandbox, what: str, settings: Settings, submit: Callable[[Pipeline], object],
           profile: Path | None = None) -> float:
    """One measured run, printed on a line of its own with the load it ran at and both sides' CPU."""
    load0, r0 = _load(), sb.replay_stats()
    wall = _run(settings, submit, profile)
    r1 = sb.replay_stats()
    fake_cpu, n, b = _fake(r0, r1)
    misses = r1["misses"] - r0["misses"]
    print(f"  {what:<28} {wall:6.1f}s | daemon CPU {LAST_CPU[0]:5.1f}s (its process {LAST_CPU[1]:5.1f}s, "
          f"{LAST_SYS[0]:4.1f}s of it the kernel's, pull "
          f"workers {LAST_CPU[0] - LAST_CPU[1]:5.1f}s) | replay CPU {fake_cpu:4.2f}s = "
          f"{fake_cpu / max(1, n) * 1e6:.0f} us/request, {fake_cpu / max(1, b) * 1e9:.1f} ms/MB ({n} requests, "
          f"{b / 1e6:.0f} MB{f', {misses} MISSES' if misses else ''}) | {load0} before, {_load()} after", flush=True)
    return wall


def _state(sb: Sandbox, tmp: Path, fleets: tuple[SandboxFleet, ...]) -> Path:
    """Every fleet consented and backfilled, the clock a month on, and the replay holding every page of a refresh."""
    seed = tmp / "seed"
    with open_app(_settings(seed, sb.base_url, len(fleets)), flows=[]) as app:
        _consent_all(app, fleets)
    _run(_settings(seed, sb.base_url, len(fleets)), lambda p: [p.backfill(f.spec.fleet_id) for f in fleets])
    sb.advance_month()
    warm = _copy(seed, tmp, "warm")
    _run(_settings(warm, sb.base_url, len(fleets)), lambda p: p.refresh())
    return seed


COPIES = [0]


def _copy(seed: Path, tmp: Path, name: str) -> Path:
    # A path of its own per copy: the lake's tables are cached by path in this process, and a
    # fresh copy's Delta log is older than the snapshot a previous run left in that cache.
    COPIES[0] += 1
    dst = tmp / f"{name}-{COPIES[0]}"
    shutil.copytree(seed, dst)
    return dst


def targets(n_together: int, n_throughput: int, singles: int, repeats: int, profile: Path | None) -> None:
    """The issue's goals: N fleets together vs the slowest alone, and 2 pull workers vs 1 on many fleets."""
    if not n_together:
        throughput(n_throughput, repeats, profile)
        return
    print(f"(a) {n_together} fleets refreshed together vs alone; {repeats} repeats; {_load()}", flush=True)
    fleets = _fleets(n_together)
    alone_fleets = [next(f for f in fleets if f.tsp == t) for t in RATES][:singles] if singles <= len(RATES) \
        else list(fleets[:singles])
    together: list[float] = []
    alone: dict[str, list[float]] = {f.spec.fleet_id: [] for f in alone_fleets}
    with sandbox(n_together, True, replay=True) as sb, tempfile.TemporaryDirectory() as tmp:
        seed = _state(sb, Path(tmp), fleets)
        for r in range(repeats):
            together.append(_timed(sb, f"#{r + 1} together", _settings(_copy(seed, Path(tmp), "run"), sb.base_url,
                                                                     n_together),
                                   lambda p: p.refresh(), profile / "together.raw" if profile and r == 0 else None))
            for f in alone_fleets:
                alone[f.spec.fleet_id].append(_timed(
                    sb, f"#{r + 1} alone {f.spec.fleet_id} ({f.tsp})",
                    _settings(_copy(seed, Path(tmp), "run"), sb.base_url, 1),
                    lambda p: p.refresh(f.spec.fleet_id)))  # noqa: B023 - run before the loop moves on
    slowest = max(statistics.median(v) for v in alone.values())
    t = statistics.median(together)
    print(f"(a) {n_together} together: median {t:.1f}s of {[round(x, 1) for x in together]} | slowest alone "
          f"(median of its runs) {slowest:.1f}s | together/slowest {t / slowest:.2f}x (goal <= 1.5x) | {_load()}",
          flush=True)

    if n_throughput:
        throughput(n_throughput, repeats, profile)


def throughput(n_throughput: int, repeats: int, profile: Path | None) -> None:
    print(f"(b) {n_throughput} fleets with 2 pull worker processes vs 1; {repeats} repeats; {_load()}", flush=True)
    fleets = _fleets(n_throughput)
    walls: dict[int, list[float]] = {1: [], 2: []}
    own: list[float] = []  # the daemon's own process's CPU per run
    with sandbox(n_throughput, True, replay=True) as sb, tempfile.TemporaryDirectory() as tmp:
        seed = _state(sb, Path(tmp), fleets)
        for r in range(repeats):
            for w in ((2, 1) if r % 2 == 0 else (1, 2)):
                walls[w].append(_timed(sb, f"#{r + 1} {w} pull worker{'s' if w > 1 else ''}",
                                       _settings(_copy(seed, Path(tmp), "run"), sb.base_url, n_throughput,
                                                 pull_workers=w), lambda p: p.refresh(),
                                       profile / f"throughput-{w}.raw" if profile and r == 0 else None))
                own.append(LAST_CPU[1])
        one, two = statistics.median(walls[1]), statistics.median(walls[2])
        print(f"(b) {n_throughput} fleets: 1 worker median {one:.1f}s of {[round(x, 1) for x in walls[1]]}, 2 workers "
              f"median {two:.1f}s of {[round(x, 1) for x in walls[2]]} | throughput 2 vs 1: {one / two:.2f}x (goal >= 1.7x)"
              f" | {_load()}", flush=True)
        worker_tier(sb, seed, Path(tmp), n_throughput, repeats, statistics.median(own))


def _recorded_slices(settings: Settings) -> list[SliceTask]:
    """Every slice a refresh submits to its pull workers, in submission order (the refresh runs as usual)."""
    seen: list[SliceTask] = []
    submit = ProcessWorkers.submit

    def recording(self: ProcessWorkers, task: object, first: bool = False) -> object:
        if isinstance(task, SliceTask):
            seen.append(task)
        return submit(self, task, first)  # type: ignore[arg-type]

    ProcessWorkers.submit = recording  # type: ignore[method-assign,assignment]
    try:
        _run(settings, lambda p: p.refresh())
    finally:
        ProcessWorkers.submit = submit  # type: ignore[method-assign]
    return seen


def _run_slices(tasks: list[SliceTask], workers: int, fleets: int, spool: Path) -> tuple[float, float, int]:
    """The slices on `workers` fresh worker processes, each fleet's lane one slice at a time as the
    pipeline runs it (a lane is one connector and one share of its token's rate): wall seconds,
    the workers' CPU seconds, candidate rows fetched."""
    lanes: dict[tuple[str, int], list[SliceTask]] = {}
    for i, t in enumerate(tasks):
        lanes.setdefault((t.fleet_id, t.lane), []).append(
            replace(t, spool_dir=str(spool), name=f"{t.name}-tier-{workers}-{i}"))
    pool = ProcessWorkers(workers, default_threads(fleets, workers, SLICE_LANES))
    left, done, failures, fetched = [len(tasks)], threading.Event(), [], [0]
    lock = threading.Lock()

    def next_of(lane: list[SliceTask]) -> None:
        pool.submit(lane.pop(0)).add_done_callback(lambda f: finished(f, lane))

    def finished(f: Future[SliceResult], lane: list[SliceTask]) -> None:
        r = f.result()
        with lock:
            if r.failure is not None or r.token_rejected:
                failures.append(r.failure.message if r.failure else "token rejected")
            fetched[0] += r.fetched
            left[0] -= 1
            if not left[0]:
                done.set()
        if lane:
            next_of(lane)

    try:
        time.sleep(1.0)  # the processes start before the clock does
        c0, t0 = _descendants_cpu(), time.perf_counter()
        for lane in lanes.values():
            next_of(lane)
        done.wait()
        wall, cpu = time.perf_counter() - t0, _descendants_cpu() - c0
    finally:
        pool.close()
    if failures:
        raise RuntimeError(f"{len(failures)} slices failed, timings would mean nothing: {failures[:3]}")
    return wall, cpu, fetched[0]


def worker_tier(sb: Sandbox, seed: Path, tmp: Path, fleets: int, repeats: int, own_cpu: float) -> None:
    """(c) The pull workers' share of (b) by itself: the slices one refresh of the fleets submits,
    recorded, then run again on 1 and on 2 worker processes with nothing else of the daemon running.

    Why: on two cores (b) cannot show what a second worker process buys. The daemon's own process
    (tokens, commits, manifest; one GIL) needs about as much CPU as all the pull workers together,
    and the 1-worker run already keeps both cores busy, so 2 workers can only win the little CPU
    left idle. (c) measures whether the part that is meant to scale, does; the daemon's process
    is then the measured serial part, and the book in docs/scale.md is sized from both.
    """
    tasks = _recorded_slices(_settings(_copy(seed, tmp, "record"), sb.base_url, fleets, pull_workers=2))
    print(f"(c) the pull workers alone: {len(tasks)} slices of {fleets} fleets' refresh (recorded from it), "
          f"on 1 and 2 worker processes; {repeats} repeats; {_load()}", flush=True)
    walls: dict[int, list[float]] = {1: [], 2: []}
    cpus: list[float] = []
    rows: set[int] = set()
    for r in range(repeats):
        for w in ((2, 1) if r % 2 == 0 else (1, 2)):
            spool = tmp / f"tier-spool-{r}-{w}"
            spool.mkdir()
            load0, r0 = _load(), sb.replay_stats()
            wall, cpu, fetched = _run_slices(tasks, w, fleets, spool)
            fake_cpu, n, _b = _fake(r0, sb.replay_stats())
            shutil.rmtree(spool)
            walls[w].append(wall)
            cpus.append(cpu)
            rows.add(fetched)
            print(f"  #{r + 1} {w} pull worker{'s' if w > 1 else ' '}         {wall:6.1f}s | workers' CPU {cpu:5.1f}s "
                  f"| replay CPU {fake_cpu:4.2f}s ({n} requests) | {fetched} rows fetched | {load0} before, "
                  f"{_load()} after", flush=True)
    if len(rows) != 1:
        raise RuntimeError(f"the runs fetched different rows: {sorted(rows)}")
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    cpu = statistics.median(cpus)
    print(f"(c) pull workers alone: 1 worker median {one:.1f}s of {[round(x, 1) for x in walls[1]]}, 2 workers "
          f"median {two:.1f}s of {[round(x, 1) for x in walls[2]]} | 2 vs 1: {one / two:.2f}x | their CPU "
          f"{cpu:.1f}s against the daemon's own process's {own_cpu:.1f}s in (b) (median): the serial part is "
          f"{own_cpu / (own_cpu + cpu):.0%} of the work, {own_cpu / fleets:.2f}s per fleet | {_load()}", flush=True)


def status_latency(n: int, requests: int, clients: int) -> None:
    fleets = _fleets(n)
    config = _config(fleets)
    with SandboxServer(config) as server, tempfile.TemporaryDirectory() as tmp, \
            open_app(_settings(Path(tmp), server.base_url, n)) as app:
        _consent_all(app, fleets)
        daemon = Daemon(app)
        server = uvicorn.Server(uvicorn.Config(create_app(app, daemon.pipeline), host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="off"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=120, limits=httpx.Limits(max_connections=clients))

        def one(i: int) -> float:
            t0 = time.perf_counter()
            api.get(f"/fleets/{fleets[i % n].spec.fleet_id}/status").raise_for_status()
            return time.perf_counter() - t0

        def burst() -> list[float]:
            with ThreadPoolExecutor(clients) as pool:
                return sorted(pool.map(one, range(requests)))

        one(0)  # the first plan fingerprints the flows' code (seconds); the daemon does it at start
        idle = burst()
        daemon.start_workers()
        for f in fleets:
            daemon.pipeline.backfill(f.spec.fleet_id)
        time.sleep(2)  # pulls under way, months committing
        busy = burst()
        running = len(daemon.queue.snapshot().running_all)
        daemon.shutdown()
        server.should_exit = True
    p95 = lambda xs: xs[int(0.95 * (len(xs) - 1))]  # noqa: E731
    print(f"status latency, {requests} requests {clients} at a time: idle median {statistics.median(idle) * 1000:.0f}"
          f" ms p95 {p95(idle) * 1000:.0f} ms | during a backfill of {n} fleets ({running} work items running at "
          f"the end) median {statistics.median(busy) * 1000:.0f} ms p95 {p95(busy) * 1000:.0f} ms | median ratio "
          f"{statistics.median(busy) / statistics.median(idle):.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleets", default="1,4,16,64")
    ap.add_argument("--singles", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--skip-status", action="store_true")
    ap.add_argument("--sandbox-process", action="store_true", help="run the sandbox in its own process")
    ap.add_argument("--serve-sandbox", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--replay", action="store_true", help="serve the fleets from the replay TSP (sandbox/replay.py) "
                    "in front of a sandbox process: every page rendered once")
    ap.add_argument("--pull-executor", default="process", choices=("thread", "process", "ray"))
    ap.add_argument("--pull-workers", type=int, default=None)
    ap.add_argument("--compare-workers", action="store_true", help="also refresh the largest N with 1 pull worker")
    ap.add_argument("--targets", action="store_true", help="the issue's goals, with the replay (see above)")
    ap.add_argument("--together", type=int, default=16)
    ap.add_argument("--throughput", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", type=Path, default=None, help="py-spy the daemon's process into this directory")
    ap.add_argument("--profile-gil", action="store_true", help="py-spy only the thread holding the GIL "
                    "(where the Python CPU goes; without it, every thread's samples, waits included)")
    ap.add_argument("--profile-native", action="store_true", help="py-spy native frames too (DuckDB, delta-rs, Arrow)")
    args = ap.parse_args()
    PULL.update(pull_executor=args.pull_executor, pull_workers=args.pull_workers)
    PROFILE_GIL[0] = args.profile_gil
    PROFILE_NATIVE[0] = args.profile_native
    if args.serve_sandbox:
        serve_sandbox(args.serve_sandbox)
        return
    print(f"sandbox {'in its own process' if args.sandbox_process else 'in this process'}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.targets:
        targets(args.together, args.throughput, args.singles if args.singles != 4 else 2, args.repeats, args.profile)
        return
    sizes = [int(x) for x in args.fleets.split(",") if x]
    for n in sizes:
        refresh(n, min(n, args.singles), args.sandbox_process, args.replay, args.compare_workers and n == max(sizes))
    if not args.skip_status:
        status_latency(8, args.requests, args.clients)


if __name__ == "__main__":
    main()
