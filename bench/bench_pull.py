"""Pulling from a TSP into month partitions, end to end over HTTP: once vs sixteen partial commits, before vs after.

Default (`python bench/bench_pull.py [--vehicles 20] [--before ../main]`): one month of a fleet
served by the replay TSP (sandbox/replay.py, in front of a sandbox process: every page rendered
once in a warm-up pull, then served from the recording, so the fake costs little), pulled into a
fresh lake by a child process of each tree (this one, "after", and --before's, e.g. main's
checkout with its own .venv), each committing the month once and in sixteen partial commits.
Printed: the child's CPU per ping end to end (HTTP, decode, normalise, spool, commits, manifest),
its wall time, commits, and the fake's CPU (sandbox + replay) over the same pulls. The same
replay serves all four pulls, in one run.

The issue's figure is for 100 trucks (6.9 M pings); on this 2-core machine, shared, a pull of that
size takes minutes per variant and tree, so the default is 20 trucks at 30 s pings (about 1.4 M
pings); --vehicles 100 runs the full size.

`--sandbox-figures ...` runs the earlier figures of this file (cold/warm sandbox, decode floor,
rate limit use):

The sandbox runs as its own process. Reported (medians over rounds where repeated):
  - end to end: pings/s from consent-ready to committed partitions, with the sandbox's rate
    limit out of reach; first on a cold sandbox (it generates and renders every page), then
    warm (pages cached), so the puller's own rate shows;
  - decode + normalise: CPU microseconds per ping, against the floor of the typed msgspec
    decode alone of the same page bodies;
  - rate limit: at the sandbox's default 50 requests/s per token, the share of that limit the
    puller used, and the share of its requests answered 429.

    python bench/bench_pull.py [--vehicles 8] [--days 14] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import msgspec
from cryptography.fernet import Fernet

from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, Vault
from connectors.providers import oauth_provider, open_connector
from connectors.samsara import SamsaraConnector, _StatsPage
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
FLEETS = {"samsara": "acme-freight", "motive": "bluebird-logistics"}  # the sandbox's fleet of each TSP
REDIRECT = "http://127.0.0.1:9/cb"


def sandbox(vehicles: int, days: int, rate: float) -> tuple[subprocess.Popen, dict]:
    months = max(1, days // 28 + 1)
    p = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--vehicles", str(vehicles),
                          "--ping-interval", "5", "--history-months", str(months), "--now", NOW.isoformat(),
                          "--samsara-rate", str(rate), "--motive-rate", str(rate)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return p, json.loads(p.stdout.readline())


def connector(info: dict, manifest: Manifest, rate: float) -> SamsaraConnector:
    ep = info["samsara"]
    client = OAuthClient(oauth_provider("samsara", ep["base_url"], ep["client_id"], ep["client_secret"], REDIRECT))
    r = httpx.get(client.consent_url("bench"))
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    creds = FleetCredentials.connect("acme-freight", client, Vault(Fernet.generate_key().decode()), manifest, code)
    return open_connector("samsara", "acme-freight", ep["base_url"], BearerAuth(creds), rate)  # type: ignore[return-value]


def pull_once(info: dict, days: int, rate: float, workers: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
        c = connector(info, m, rate)
        start = int((NOW - timedelta(days=days)).timestamp() * 1000)
        t0 = time.perf_counter()
        report = pull_fleet(c, LocalStore(Path(d) / "store"), m, "acme-freight", start, int(NOW.timestamp() * 1000),
                            PullOptions(work_dir=Path(d), workers=workers))
        wall = time.perf_counter() - t0
        return {"pings": report.rows_accepted, "wall": wall, "requests": c.http.requests,
                "throttled": c.http.throttled}


def decode_costs(info: dict, days: int, rounds: int) -> tuple[float, float, int]:
    """(floor us/ping, decode+normalise us/ping, pings) over the same captured page bodies."""
    with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
        c = connector(info, m, 1e6)
        bodies: list[bytes] = []
        start = NOW - timedelta(days=days)
        for v in c.vehicles():
            after = None
            while True:
                params = {"types": "gps,gpsOdometerMeters", "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "endTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "vehicleIds": v.vehicle_id, "limit": 512}
                r = c.http.get("/fleet/vehicles/stats/history", {**params, **({"after": after} if after else {})})
                bodies.append(r.content)
                page = msgspec.json.decode(r.content)
                if not page["pagination"]["hasNextPage"]:
                    break
                after = page["pagination"]["endCursor"]
    decoder = msgspec.json.Decoder(_StatsPage)
    pings = sum(len(v.gps) for b in bodies for v in decoder.decode(b).data)
    floor, full = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        for b in bodies:
            decoder.decode(b)
        floor.append((time.process_time() - t0) / pings * 1e6)
        t0 = time.process_time()
        for b in bodies:
            for v in decoder.decode(b).data:
                if v.gps:
                    c._normalise(v, salvaged=False, decorated=False)
        full.append((time.process_time() - t0) / pings * 1e6)
    return statistics.median(floor), statistics.median(full), pings


def legacy(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=8)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)

    cold, warm = [], []
    for rnd in range(a.rounds):
        proc, info = sandbox(a.vehicles, a.days, 1e6)
        try:
            c = pull_once(info, a.days, 1e6)
            w = pull_once(info, a.days, 1e6)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        cold.append(c["pings"] / c["wall"])
        warm.append(w["pings"] / w["wall"])
        print(f"round {rnd + 1}: {c['pings']:,} pings  cold sandbox {cold[-1]:,.0f}/s  warm sandbox {warm[-1]:,.0f}/s",
              flush=True)

    proc, info = sandbox(a.vehicles, a.days, 1e6)
    try:
        floor_us, full_us, n = decode_costs(info, a.days, a.rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    limit = 50.0
    proc, info = sandbox(4, 14, limit)
    try:
        pull_once(info, 14, 1e6, workers=1)  # warm the sandbox's page cache: measure the puller, not rendering
        r = pull_once(info, 14, limit, workers=4)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    used = r["requests"] / r["wall"] / limit

    print(f"\nend to end into partitions ({a.vehicles} vehicles x {a.days} days at 5 s, 4 workers, median of "
          f"{a.rounds}): cold sandbox {statistics.median(cold):,.0f} pings/s, warm sandbox "
          f"{statistics.median(warm):,.0f} pings/s")
    print(f"decode + normalise: {full_us:.2f} us/ping vs typed decode alone {floor_us:.2f} us/ping "
          f"({full_us / floor_us:.1f}x the floor; {n:,} pings)")
    print(f"rate limit {limit:.0f} req/s: {r['requests']} requests in {r['wall']:.1f}s = {used:.0%} of the limit used, "
          f"{r['throttled']} answered 429 ({r['throttled'] / max(1, r['requests']):.1%})")


CHILD = r"""
import json, sys, time, tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse
import httpx
from cryptography.fernet import Fernet
from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, Vault
from connectors.providers import oauth_provider, open_connector
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore
from ingest.pull.hos_datasets import HosPull
a = json.loads(sys.argv[1])
STAGES = {}  # stage -> thread CPU s, exclusive of the stages called inside it
_NESTED = {}  # thread id -> a stack of the CPU its nested stages took


def staged(owner, name, stage):
    # Count owner.name's thread CPU (less its nested stages') under `stage`, wherever it was imported.
    import threading
    fn = getattr(owner, name, None)
    if fn is None:
        return

    def wrapper(*args, **kwargs):
        stack = _NESTED.setdefault(threading.get_ident(), [])
        stack.append(0.0)
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - t0
            inner = stack.pop()
            STAGES[stage] = STAGES.get(stage, 0.0) + spent - inner
            if stack:
                stack[-1] += spent
    setattr(owner, name, wrapper)
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").split(".")[0] in ("connectors", "ingest", "partitions"):
            for k, v in list(vars(mod).items()):
                if v is fn:
                    setattr(mod, k, wrapper)


import connectors.http, connectors.samsara, connectors.motive, partitions.writer, partitions.schema, ingest.pull.slices
staged(ingest.pull.slices, "pull_and_spool", "slice: normalise, paging, rest")
staged(connectors.http.TspHttp, "get", "HTTP (TspHttp.get)")
staged(connectors.samsara, "decode_or_salvage", "decode (msgspec)")
staged(connectors.motive, "decode_or_salvage", "decode (msgspec)")
staged(partitions.schema, "split_valid", "validate")
staged(partitions.writer, "_prepare", "worker part (dedupe, sort, Parquet, digest)")
staged(partitions.writer, "spool_split", "spool: split by month, rest")
staged(partitions.writer.MonthWriter, "commit", "commit (dedupe, publish, compaction)")
with tempfile.TemporaryDirectory() as d, Manifest(Path(d) / "m.duckdb") as m:
    client = OAuthClient(oauth_provider(a["tsp"], a["url"], a["cid"], a["secret"], "http://127.0.0.1:9/cb"))
    r = httpx.get(client.consent_url("bench") + "&fleet=" + a["fleet"])
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    creds = FleetCredentials.connect(a["fleet"], client, Vault(Fernet.generate_key().decode()), m, code)
    c = open_connector(a["tsp"], a["fleet"], a["url"], BearerAuth(creds), 1e6)
    if a.get("refresh"):  # as the daemon refreshes: pings and events, drivers and HOS, each stream's lookback
        def opts(): return PullOptions(work_dir=Path(d), with_events=True, hos=HosPull())
        pull_fleet(c, LocalStore(Path(d) / "s"), m, a["fleet"], a["start"], a["now"], opts())
        r0 = c.http.requests
    else:
        def opts(): return PullOptions(work_dir=Path(d), commit_every=a["every"], lookback_ms=0,
                                       **({"workers": a["workers"]} if a.get("workers") else {}))
        r0 = 0
    STAGES.clear()
    t0, w0 = time.process_time(), time.perf_counter()
    rep = pull_fleet(c, LocalStore(Path(d) / "s"), m, a["fleet"], a["start"], a["now"], opts())
    print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0, "pings": rep.rows_accepted,
                      "slices": rep.slices_pulled, "requests": c.http.requests - r0,
                      "commits": len([x for x in rep.commits if x.dataset == "pings"]), "stages": STAGES}))
"""


def _child(tree: Path, args: dict, profile: Path | None = None) -> dict:
    py = tree / ".venv" / "bin" / "python"
    cmd = [str(py), "-c", CHILD, json.dumps(args)]
    if profile is not None:  # py-spy samples every thread of the child (not idle ones): where its CPU goes
        cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--rate", "250",
               "--nonblocking", "-o", str(profile), "--", *cmd]
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tree)}, timeout=7200)
    if out.returncode != 0:
        raise RuntimeError(f"pull in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(next(x for x in reversed(out.stdout.strip().splitlines()) if x.startswith("{")))


# Where a pull's CPU goes, by the innermost frame of each sample that matches (function name, in file):
# the stages of issue 27's per-ping account. A sample under none of them is "other".
_STAGES = (
    ("commit: dedupe, merge, compaction", ("MonthWriter.commit", "commit (partitions/writer.py")),
    ("worker part: dedupe, sort, Parquet, digest", ("_prepare (partitions/writer.py",)),
    ("spool: month split, IPC write", ("spool_split (partitions/writer.py",)),
    ("validate", ("split_valid",)),
    ("normalise", ("candidate_table", "_normalise_batch", "_normalised", "read (connectors/motive.py",
                   "_gps (connectors/motive.py", "normalise")),
    ("decode (msgspec)", ("decode_or_salvage", "_read_pages", "decode (connectors/", "_locations")),
    ("HTTP (client, transport, socket)", ("TspHttp.get", "get (connectors/http.py", "_once (connectors/http.py")),
)


def _stage(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, marks in _STAGES:
            if any(m in frame for m in marks):
                return name
    return "other"


def profile_report(path: Path, pings: int, cpu_s: float, top: int = 25) -> None:
    """A py-spy raw profile as CPU per ping by stage, and its hottest functions (self time)."""
    stages: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        stages[_stage(stack)] = stages.get(_stage(stack), 0) + count
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + count
    us = cpu_s / pings * 1e6
    print(f"  profile {path}: {total:,} samples over {cpu_s:.1f} s CPU = {us:.2f} us/ping (shares of samples)")
    for name, count in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"    {name:45s} {count / total:6.1%}  ~{count / total * us:5.2f} us/ping")
    print("  hottest functions (self):")
    for leaf, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {count / total:6.1%}  {leaf[:150]}")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _replayed(vehicles: int, tsp: str = "samsara") -> Iterator[tuple[subprocess.Popen, str, dict]]:
    """A sandbox of `vehicles` trucks behind the replay TSP: the sandbox process (for its CPU), the
    replay's URL of `tsp`, and the pull parameters of one February 2026 month of its sandbox fleet
    (Samsara's acme-freight, Motive's bluebird-logistics)."""
    proc, info = sandbox(vehicles, 28, 1e6)
    upstream = info["samsara"]["base_url"].rsplit("/", 1)[0]
    rep = subprocess.Popen([sys.executable, "-m", "sandbox.replay", "--upstream", upstream,
                            "--samsara-rate", "1e6", "--motive-rate", "1e6"], stdout=subprocess.PIPE, text=True)
    try:
        assert rep.stdout is not None
        url = json.loads(rep.stdout.readline())["base_url"] + "/" + tsp
        yield proc, url, {"tsp": tsp, "url": url, "cid": info[tsp]["client_id"], "secret": info[tsp]["client_secret"],
                          "fleet": FLEETS[tsp], "start": int(datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp() * 1000),
                          "now": int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)}
    finally:
        for p in (rep, proc):
            p.terminate()
            p.wait(timeout=30)


def once_vs_partial(vehicles: int, before: Path | None, rounds: int, tsp: str = "samsara",
                    profile: Path | None = None) -> None:
    with _replayed(vehicles, tsp) as (proc, url, base):
        stats = url.rsplit("/", 1)[0] + "/_replay/stats"
        here = Path(__file__).resolve().parents[1]
        warm = _child(here, {**base, "every": 10**6})  # renders and records every page once
        slices = warm["slices"]
        every = -(-slices // 16)
        print(f"{tsp}: {warm['pings']:,} pings, {slices} slices, {warm['requests']} requests; warm-up (recording) "
              f"{warm['wall']:.1f}s; load average {os.getloadavg()[0]:.2f}", flush=True)
        trees = [("after", here)] + ([("before", before)] if before else [])
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            for label, tree in trees:
                for mode, n in (("once", 10**6), ("partial", every)):
                    out = profile / f"{tsp}-{label}-{mode}.txt"
                    r = _child(tree, {**base, "every": n}, profile=out)
                    print(f"\n{label} {mode} (under py-spy, so slower):", flush=True)
                    profile_report(out, r["pings"], r["cpu"])
            return
        rows = []
        for _ in range(rounds):
            for label, tree in trees:
                for mode, n in (("once", 10**6), ("16 partial", every)):
                    s0, q0 = _cpu_of(proc.pid), httpx.get(stats).json()
                    r = _child(tree, {**base, "every": n})
                    s1, q1 = _cpu_of(proc.pid), httpx.get(stats).json()
                    replay_us = (q1["cpu_s"] - q0["cpu_s"]) / max(1, q1["requests"] - q0["requests"] - 1) * 1e6
                    rows.append((label, mode, r, replay_us))
                    print(f"  {label:6s} {mode:10s}: {r['cpu'] / r['pings'] * 1e6:6.2f} us/ping CPU "
                          f"({r['cpu'] / r['requests'] * 1e6:5.0f} us/request), wall {r['wall']:6.1f}s, "
                          f"{r['commits']} pings commits | fake: replay {replay_us:4.0f} us/request, "
                          f"{q1['misses'] - q0['misses']} misses, sandbox {s1 - s0:4.2f}s CPU | load "
                          f"{os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n{tsp}, {vehicles} trucks, one month (medians of {rounds}):")
    for label, _tree in trees:
        med = {m: statistics.median(r["cpu"] / r["pings"] * 1e6 for lb, mm, r, _ in rows if lb == label and mm == m)
               for m in ("once", "16 partial")}
        print(f"  {label}: once {med['once']:.2f} us/ping, 16 partial commits {med['16 partial']:.2f} us/ping "
              f"= {med['16 partial'] / med['once']:.2f}x (goal <= 1.15x)")
    print("\nthread CPU per ping by stage (us, medians; each stage less the stages it calls; 'rest': the pull's "
          "other CPU, e.g. the daemon's planning, imports, OAuth):")
    names = sorted({k for _, _, r, _ in rows for k in r.get("stages", {})})
    cols = [(label, m) for label, _ in trees for m in ("once", "16 partial")]
    print("  " + " " * 46 + "".join(f"{lb + ' ' + m:>20s}" for lb, m in cols))

    def cell(label: str, mode: str, f: Callable[[dict], float]) -> str:
        got = [f(r) / r["pings"] * 1e6 for lb, mm, r, _ in rows if lb == label and mm == mode]
        return f"{statistics.median(got):20.2f}" if got else " " * 20

    for name in names:
        print(f"  {name:46s}" + "".join(cell(lb, m, lambda r, k=name: r.get("stages", {}).get(k, 0.0)) for lb, m in cols))
    print(f"  {'rest':46s}" + "".join(cell(lb, m, lambda r: r["cpu"] - sum(r.get("stages", {}).values()))
                                      for lb, m in cols))


def nothing_new(vehicles: int, before: Path | None, rounds: int) -> None:
    """A refresh with nothing new at the TSP: the same pull again at the same now (a fleet's floor)."""
    with _replayed(vehicles) as (_proc, _url, month):
        base = {**month, "every": 32, "refresh": True}
        here = Path(__file__).resolve().parents[1]
        _child(here, base)  # records every page of both pulls
        trees = [("after", here)] + ([("before", before)] if before else [])
        cpu: dict[str, list[float]] = {label: [] for label, _ in trees}
        for _ in range(rounds):
            for label, tree in trees:
                r = _child(tree, base)
                cpu[label].append(r["cpu"])
                print(f"  {label:6s} nothing new: {r['cpu']:.3f} s CPU, wall {r['wall']:.2f}s, {r['pings']:,} pings "
                      f"read again (of the lookback; a tree that skips unchanged lookback slices reads none), "
                      f"{r['requests']} requests", flush=True)
    print(f"\na refresh with nothing new, {vehicles} trucks (pings, events, drivers, HOS; in-process slices; medians "
          f"of {rounds}):")
    for label, values in cpu.items():
        print(f"  {label}: {statistics.median(values):.3f} s CPU (goal <= 0.1 s)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sandbox-figures":
        legacy(sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--vehicles", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--before", type=Path, default=None, help="another checkout (with its .venv) to compare, e.g. ../main")
    ap.add_argument("--idle-vehicles", type=int, default=2, help="the fleet of the nothing-new refresh (0: skip it)")
    ap.add_argument("--skip-month", action="store_true", help="only the nothing-new refresh")
    ap.add_argument("--tsp", choices=("samsara", "motive"), default="samsara", help="whose API the month is pulled from")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="instead of timing rounds: pull once and in partial commits under py-spy (per tree), "
                         "leave the raw profiles in DIR and print CPU per ping by stage and the hottest functions")
    a = ap.parse_args()
    if not a.skip_month:
        once_vs_partial(a.vehicles, a.before, a.rounds, a.tsp, a.profile)
    if a.idle_vehicles:
        nothing_new(a.idle_vehicles, a.before, a.rounds)


if __name__ == "__main__":
    main()
