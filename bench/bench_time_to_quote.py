"""Time from consent to a first quote: the first complete month's features, and the full history.

Runs the same measurement on two code trees in this one run: this checkout ("new") and a git
ref ("old", default `main`, exported with `git archive` to a temp dir), each against its own
fresh sandbox process serving Samsara at its published rate limit (connectors/providers.py:
20 requests/s per token), the connector pacing itself at that limit as in production. Each
tree runs in its own process: consent -> the backfill and the feature work it queues (this tree:
the pipeline the daemon drives; older trees: Service.pull then Service.features); the figures
come from the manifest's own timestamps.

Measured on a scaled-down fleet (default 2 trucks, 5 s pings, history to NOW = mid-month), then
extrapolated by pings to a 100-truck fleet with 24 complete months:

  pull time     = pings / R, R = pings landed per second of pulling (bound by the rate limit)
  feature time  = pings / F, F = pings per second of feature computing (the measured passes)
  first quote   = new: one month pulled + its features;  old: every month pulled + the first
                  month's share of the feature pass
  full history  = all pulled + all features (both)

    python bench/bench_time_to_quote.py [--old main] [--vehicles 2] [--months 2] [--rounds 1]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-03-15T12:00:00+00:00"
FLEET = "acme-freight"
RATE = 20.0  # Samsara's published requests/s per token (connectors/providers.py)
PAGE = 512   # pings per Samsara page


def _new_tree() -> bool:
    """Whether the tree on sys.path is this one (ingest/ in layers) or an older, flat one."""
    import importlib.util

    return importlib.util.find_spec("ingest.runtime") is not None


def worker(sandbox_url: str, months: int, data_dir: str) -> None:
    """One consent -> pull -> features on the code tree on sys.path; prints JSON figures."""
    from datetime import datetime, timezone

    import httpx
    from cryptography.fernet import Fernet

    from common.months import month_bounds_ms

    settings_mod = "ingest.wiring.settings" if _new_tree() else "ingest.settings"
    load_settings = __import__(settings_mod, fromlist=["load_settings"]).load_settings
    settings = load_settings(data_dir=Path(data_dir), sandbox_url=sandbox_url, history_months=months,
                             token_key=Fernet.generate_key().decode())
    if _new_tree():
        # This tree: the pipeline, as the daemon drives it (each pulled month queues its features).
        from ingest.runtime.app import open_app
        from ingest.runtime.pipeline import Pipeline, Runner, pull_outcomes

        with open_app(settings) as app:
            location = httpx.get(app.onboarding.consent_url("samsara", FLEET)).headers["location"]
            q = httpx.URL(location).params
            t0 = datetime.now(timezone.utc)
            app.onboarding.complete_consent("samsara", q["code"], q["state"])
            pipeline = Pipeline(app)
            done = Runner(pipeline).run_until_idle(lambda: pipeline.consented(FLEET))
            t_end = datetime.now(timezone.utc)
            (outcome,) = pull_outcomes(done)
            now_ms = app.clock.now_ms()
            runs = [r for r in app.manifest.runs() if r.fleet_id == FLEET and r.status == "succeeded"]
            raw = {p.month: p.rows for p in app.manifest.raw_partitions(FLEET, "pings")}
            flows = {(f.name, f.version) for f in app.flows}
            t_pull = max(p.committed_at for p in app.manifest.raw_partitions(FLEET))  # the pull's last commit
    else:
        from ingest.wiring import open_service  # type: ignore[attr-defined]  # the older tree's layout

        with open_service(settings) as service:
            location = httpx.get(service.consent_url("samsara", FLEET)).headers["location"]
            q = httpx.URL(location).params
            t0 = datetime.now(timezone.utc)
            service.complete_consent("samsara", q["code"], q["state"])
            outcome = service.pull(FLEET)
            t_pull = datetime.now(timezone.utc)
            service.features()
            t_end = datetime.now(timezone.utc)
            now_ms = service.clock.now_ms()
            runs = [r for r in service.manifest.runs() if r.fleet_id == FLEET and r.status == "succeeded"]
            raw = {p.month: p.rows for p in service.manifest.raw_partitions(FLEET, "pings")}
            flows = {(f.name, f.version) for f in service.flows}
    complete = sorted(m for m in raw if month_bounds_ms(m)[1] <= now_ms)
    by_month: dict[str, list] = {}
    for r in runs:
        by_month.setdefault(r.month, []).append(r)
    done = {m: max(r.finished_at for r in rs) for m, rs in by_month.items()
            if m in complete and {(r.flow, r.version) for r in rs} >= flows}
    first_month = min(done, key=lambda m: done[m])
    # Feature compute time: each month's span of runs, summed (new: months run one by one
    # inside the pull); for a single pass over all months (old) the spans overlap, so the pass's
    # own span is used when it is shorter.
    spans = [(max(r.finished_at for r in rs) - min(r.started_at for r in rs)).total_seconds()
             for rs in by_month.values()]
    one_pass = (max(r.finished_at for r in runs) - min(r.started_at for r in runs)).total_seconds()
    feature_s = min(sum(spans), one_pass)
    print(json.dumps({
        "result": str(outcome.result), "pings": sum(raw.values()), "pings_per_month": {m: raw[m] for m in complete},
        "first_month": first_month, "first_s": (done[first_month] - t0).total_seconds(),
        "full_s": (t_end - t0).total_seconds(), "pull_wall_s": (t_pull - t0).total_seconds(),
        "feature_s": feature_s, "windows": len(runs)}))


def export(ref: str, into: Path) -> Path:
    tree = into / "old"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def measure(tree: Path, vehicles: int, months: int, tmp: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    env.pop("FLEETLAKE_CONFIG_FILE", None)
    sandbox = subprocess.Popen([sys.executable, "-m", "ingest.surfaces.cli", "sandbox", "--port", "0", "--vehicles",
                                str(vehicles), "--ping-interval", "5", "--history-months", str(months), "--now", NOW,
                                "--samsara-rate", str(RATE)], stdout=subprocess.PIPE, text=True, env=env,
                               cwd=str(tree))
    try:
        assert sandbox.stdout is not None
        info = json.loads(sandbox.stdout.readline())
        url = info["samsara"]["base_url"].rsplit("/", 1)[0]  # the sandbox's root serves its clock and apps
        data = tmp / f"data-{tree.name}-{time.monotonic_ns()}"
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", url, str(months), str(data)],
                             env=env, cwd=str(tree), capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"worker on {tree} failed:\n{out.stderr[-3000:]}")
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)


def extrapolate(m: dict, vehicles: int, new: bool, trucks: int = 100, months: int = 24) -> dict:
    per_truck_month = statistics.median(m["pings_per_month"].values()) / vehicles
    p_month = per_truck_month * trucks
    p_all = p_month * months
    pull_s = m["pull_wall_s"] - (m["feature_s"] if new else 0.0)  # new: features run inside the pull
    r = m["pings"] / pull_s
    f = m["pings"] / m["feature_s"]
    first = p_month / r + p_month / f if new else p_all / r + p_month / f
    return {"R": r, "F": f, "p_all": p_all, "first_s": first, "full_s": p_all / r + p_all / f}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="main", help="git ref of the code before the change")
    ap.add_argument("--vehicles", type=int, default=2)
    ap.add_argument("--months", type=int, default=2, help="history months (complete ones; the open month adds)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], int(a.worker[1]), a.worker[2])
        return
    results: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="bench-ttq-") as d:
        tmp = Path(d)
        trees = {"old": export(a.old, tmp), "new": ROOT}
        for rnd in range(a.rounds):
            for name in ("old", "new"):  # alternate, so machine load falls on both alike
                m = measure(trees[name], a.vehicles, a.months, tmp)
                results[name].append(m)
                print(f"round {rnd + 1} {name}: {m['pings']:,} pings; first complete month ({m['first_month']}) "
                      f"features at {m['first_s']:.1f}s, full history at {m['full_s']:.1f}s "
                      f"(pull {m['pull_wall_s']:.1f}s, features {m['feature_s']:.1f}s, {m['windows']} windows)",
                      flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"\nmeasured, {a.vehicles} trucks x {a.months} complete months + the open month at 5 s pings, Samsara at "
          f"{RATE:.0f} req/s (median of {a.rounds}):")
    for key, label in (("first_s", "consent -> first complete month's features"), ("full_s", "consent -> full history")):
        old, new = med("old", key), med("new", key)
        print(f"  {label:45s} old {old:8.1f}s  new {new:8.1f}s  ratio old/new {old / new:5.2f}")
    print(f"\nextrapolated by pings to 100 trucks x 24 months at 5 s (rate limit bound: {RATE:.0f} req/s x {PAGE} "
          f"pings/page = {RATE * PAGE:,.0f} pings/s at most):")
    for name in ("old", "new"):
        xs = [extrapolate(r, a.vehicles, name == "new") for r in results[name]]
        rate = statistics.median(x["R"] for x in xs)
        feat = statistics.median(x["F"] for x in xs)
        first = statistics.median(x["first_s"] for x in xs)
        full = statistics.median(x["full_s"] for x in xs)
        print(f"  {name}: pull rate {rate:,.0f} pings/s ({rate * 60:,.0f}/min), features {feat:,.0f} pings/s; "
              f"{statistics.median(x['p_all'] for x in xs) / 1e6:,.0f} M pings; first quote {first / 3600:.2f} h, "
              f"full history {full / 3600:.2f} h")


if __name__ == "__main__":
    main()
