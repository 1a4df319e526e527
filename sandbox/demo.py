"""`fleetlake demo`: the main job on embedded defaults.

Starts the sandbox TSPs in-process, consents one Samsara and one Motive fleet through the real
OAuth flow, backfills their history into the local store under ./fleetlake-data, then moves the
sandbox clock one month forward and runs the monthly refresh, printing what each step did. Run
again in the same directory, it resumes at the clock the last run ended on (nothing is new), then
moves one more month forward.
Work runs through the same pipeline as in the daemon: each pulled month queues its feature work,
so the refresh recomputes only the months whose inputs changed: the month that was open at
backfill time and the new one.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import httpx
from pydantic import SecretStr

from connectors.redact import install_log_scrubber
from ingest.engine.runs import FeatureReport
from ingest.pull.backfill import PullProgress, PullReport
from ingest.runtime.app import App, open_app
from ingest.runtime.pipeline import Pipeline, Runner, feature_report, pull_outcomes
from ingest.surfaces.progress import ProgressBar
from ingest.wiring.keys import local_token_key
from ingest.wiring.settings import TspSettings, load_settings
from sandbox.server import SandboxServer
from sandbox.world import SandboxConfig


def _demo_key(data_dir: Path) -> str:
    """The token key: FLEETLAKE_TOKEN_KEY if set, else the one kept (0600) in the data dir, as the CLI does."""
    return os.environ.get("FLEETLAKE_TOKEN_KEY") or local_token_key(data_dir, warn=False)


def _span(months: list[str]) -> str:
    if not months:
        return "none"
    return f"{months[0]}..{months[-1]}" if len(months) > 1 else months[0]


def _print_report(step: str, fleet: str, r: PullReport, events: int) -> None:
    q = sum(r.quarantined.values())
    months = r.months_changed
    print(f"  {step:9s} {fleet:20s} {r.slices_pulled:4d} slices   {r.rows_accepted:>10,} pings  {events:4d} events  "
          f"{q:5d} quarantined  months committed: {len(months):2d} ({_span(months)})  {r.seconds:5.1f}s", flush=True)


def run_demo(config: SandboxConfig, history_months: int, revoke: tuple[str, ...] = ()) -> int:
    """The demo through the same app and pipeline the daemon and the CLI use, pointed at an in-process sandbox.

    `revoke`: sandbox fleets that withdraw consent before the first pull (to show fleet isolation)."""
    logging.basicConfig(level=logging.WARNING)
    install_log_scrubber()
    base = load_settings()
    base.log_deprecations()
    # The demo is not about rate limits: let the sandbox answer as fast as it can.
    config = replace(config, samsara_rate_per_s=2000.0, motive_rate_per_s=2000.0)
    fast = TspSettings(rate_per_s=1900.0)
    with SandboxServer(config) as server:
        _resume_clock(server, base.data_dir)
        settings = base.model_copy(update={
            "sandbox_url": server.base_url, "token_key": SecretStr(_demo_key(base.data_dir)),
            "history_months": history_months, "samsara": fast, "motive": fast})
        with open_app(settings) as app:
            _demo(app, server, config, revoke)
        _keep_clock(server, base.data_dir)
    return 0


# The sandbox's clock is real time until the demo moves it a month on. A second run in the same
# data dir starts where the first one's clock ended: time never runs backwards for the lake, as
# it does not at a real TSP (a refresh at an earlier clock would find its open months shorter).
_CLOCK_FILE = "demo-clock"


def _resume_clock(server: SandboxServer, data_dir: Path) -> None:
    try:
        kept = int((data_dir / _CLOCK_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    if kept > server.world.clock.now_ms():
        server.world.clock.set(datetime.fromtimestamp(kept / 1000, tz=timezone.utc))


def _keep_clock(server: SandboxServer, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / _CLOCK_FILE).write_text(f"{server.world.clock.now_ms()}\n")


def _demo(app: App, server: SandboxServer, config: SandboxConfig, revoke: tuple[str, ...]) -> None:
    settings = app.settings
    bars: dict[str, ProgressBar] = {}

    def progress(work: object, p: PullProgress) -> None:  # a line per month pulled (redrawn on a terminal)
        bars.setdefault(p.fleet_id, ProgressBar(f"  pulling   {p.fleet_id:20s}", sys.stdout))(p)

    pipeline = Pipeline(app, on_progress=progress)
    print(f"fleetlake demo: store {app.store.url}, manifest {settings.resolved_manifest_path}")
    print(f"  active flows: {', '.join(f'{f.name}@{f.version}' for f in app.flows)}")
    for fleet in config.fleets:
        fid, tsp = fleet.spec.fleet_id, fleet.tsp
        # The sandbox approves at once (`fleet` stands in for the admin's login); its redirect
        # carries the code and state to the callback. A second demo run meets a new sandbox whose
        # tokens differ, so a fleet the manifest already knows is re-linked.
        relink = app.manifest.fleet(fid) is not None
        url = app.onboarding.consent_url(tsp, fid, relink=relink)
        q = httpx.URL(httpx.get(f"{url}&fleet={fid}").headers["location"]).params
        app.onboarding.complete_consent(tsp, q["code"], q["state"])
        print(f"  consented {fid} ({tsp}) through OAuth; history from {app.reads.fleet(fid).history_start:%Y-%m}")

    computed: dict[str, set[str]] = {}  # months with features, per fleet, for the printout

    def pull_all(step: str) -> None:
        feats = FeatureReport(())  # windows computed as each month's raw data completed, and after
        t_features = 0.0
        for fleet in config.fleets:
            fid = fleet.spec.fleet_id
            queue_pull = pipeline.backfill if step == "backfill" else pipeline.refresh
            done = Runner(pipeline).run_until_idle(lambda: queue_pull(fid))  # noqa: B023 - run before the loop moves on
            feats = feats + feature_report(done)
            t_features += sum(r.seconds for r in feature_report(done).results)
            for o in pull_outcomes(done):
                if o.pings is None:  # one fleet's trouble is reported and recorded; the others carry on
                    print(f"  {step:9s} {fid:20s} {o.result.value}: {o.error}", flush=True)
                    continue
                _print_report(step, fid, o.pings, o.events.rows_accepted if o.events else 0)
        for fleet in config.fleets:
            fid = fleet.spec.fleet_id
            month_flows = {(f.name, f.version) for f in app.flows if not f.upstream}  # the quote's line is its own
            per_flow = {k: n for k, n in feats.windows(fid).items() if k in month_flows}
            months = feats.months(fid)
            before = computed.setdefault(fid, set())
            new = [m for m in months if m not in before]
            again = [m for m in months if m in before]
            before.update(months)
            counts = sorted(set(per_flow.values()))
            detail = f"new: {_span(new)}" + (f"; recomputed (new data): {_span(again)}" if again else "")
            print(f"  features  {fid:20s} {sum(per_flow.values()):4d} windows: {len(per_flow)} flows x "
                  f"{'/'.join(map(str, counts)) or 0} months ({detail})", flush=True)
        for r in feats.results:
            if r.flow == "quote_summary" and r.status.value == "succeeded":
                print(f"  quote     {r.fleet_id:20s} {r.window_key} computed (fleetlake status --fleet {r.fleet_id})",
                      flush=True)
        for r in feats.failed:
            print(f"  features  {r.fleet_id:20s} {r.flow}@{r.version} {r.month} failed: {r.error}", flush=True)
        print(f"  features  computed in {t_features:.1f}s of month tasks", flush=True)

    for fid in revoke:  # the fleet withdraws its consent in the TSP's UI before the first pull
        server.world.authorities[server.world.fleets[fid].tsp].revoke(fid)

    t0 = time.monotonic()
    pull_all("backfill")
    server.world.clock.advance_months(1)
    print(f"  sandbox clock moved one month forward, to {server.world.clock.now():%Y-%m-%d %H:%M} UTC")
    pull_all("refresh")
    print(f"done in {time.monotonic() - t0:.0f}s; query the lake (Delta tables) with `fleetlake sql`, e.g.\n"
          '  fleetlake sql -c "SELECT fleet, month, count(*) FROM pings GROUP BY ALL ORDER BY ALL"')
    for f in [f for f in app.flows if not f.upstream][-1:]:  # an active month flow's view, as `fleetlake sql` names it
        print(f'  fleetlake sql -c "SELECT * FROM features_{f.name}_v{f.version} WHERE vehicle_id IS NULL ORDER BY ALL"')
