"""Time to a first quote, against a real `fleetlake run` and the sandbox served over HTTP.

A backfill pulls the newest complete month first and computes its features at once, walks back
month by month, then pulls the open month; a kill resumes at the next month in that order; the
readiness endpoint and the webhook report each threshold once, in order. Everything is read from
the daemon's API, the webhook receiver and the manifest's own timestamps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from cryptography.fernet import Fernet

from common.months import month_bounds_ms
from partitions import Manifest
from sandbox.faults import FaultPlan
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.webhook import Receiver, webhook_receiver

pytestmark = pytest.mark.slow
TOKEN = "quote-" + uuid.uuid4().hex
FLEET = "acme-freight"
# NOW is 2026-03-15: five months of history are 2025-10 .. 2026-02 complete, and 2026-03 open.
COMPLETE_NEWEST_FIRST = ["2026-02", "2026-01", "2025-12", "2025-11", "2025-10"]
OPEN = "2026-03"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[SandboxServer, DaemonProcess, Receiver, dict[str, str]]]:
    base = default_config(seed=5, vehicles=2, ping_interval_s=60, history_months=5, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox, \
            webhook_receiver() as hook:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "5",
               "FLEETLAKE_REFRESH_CRON": "0 3 1 1 *",
               "FLEETLAKE_ALERT_WEBHOOK_URL": hook.url, "FLEETLAKE_READINESS_MONTHS": "[1, 3, 5]",
               "FLEETLAKE_LOG_FORMAT": "json"}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        try:
            yield sandbox, daemon, hook, env
        finally:
            daemon.kill()


def _api(daemon: DaemonProcess) -> httpx.Client:
    return loopback.client(base_url=daemon.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


def _consent(api: httpx.Client) -> None:
    url = api.post("/connect/samsara", params={"fleet_id": FLEET}).json()["consent_url"]
    assert loopback.get(loopback.get(url).headers["location"]).status_code == 200


def _backfilled(api: httpx.Client) -> bool:
    s = api.get(f"/fleets/{FLEET}/status").json()
    return s["status"] == "active" and all(v == "done" for m in s["months"].values() for v in m["features"].values())


def _gps_slices(m: Manifest) -> list[tuple[int, int, datetime]]:
    """(start ms, end ms, completed at) of every GPS checkpoint of the fleet."""
    rows = m._all("SELECT stream, slice_key, completed_at FROM pull_checkpoints WHERE fleet_id = ? "
                  "AND dataset = 'pings'", [FLEET])
    out = []
    for stream, key, at in rows:
        start = int(key.rsplit("/", 1)[1])
        slice_ms = int(stream.rsplit("/", 1)[1])
        grid = start - start % slice_ms
        out.append((start, grid + slice_ms, at.replace(tzinfo=timezone.utc)))
    return out


def _readiness(api: httpx.Client) -> dict[str, Any]:
    r = api.get(f"/fleets/{FLEET}/readiness")
    r.raise_for_status()
    return r.json()


def test_newest_month_features_come_before_older_pulls_and_the_finished_backfill_recomputes_nothing(
        world, tmp_path: Path) -> None:
    sandbox, daemon, hook, env = world
    daemon.start()
    with _api(daemon) as api:
        _consent(api)
        wait_for("the backfill with features", lambda: _backfilled(api), 240, 1.0)
        ready = _readiness(api)
        # Readiness: every complete month has features, nothing left to pull, thresholds in order.
        assert ready["months_ready"] == sorted(COMPLETE_NEWEST_FIRST) and ready["months_to_pull"] == []
        assert ready["span"] == ["2025-10", "2026-02"] and ready["months_total"] == 6 and ready["eta_s"] == 0
        assert ready["pings"] > 0
        spans = {t["months"]: t["span"] for t in ready["thresholds"]}
        assert spans == {1: ["2026-02", "2026-02"], 3: ["2025-12", "2026-02"], 5: ["2025-10", "2026-02"]}
        fired = [datetime.fromisoformat(t["fired_at"]) for t in ready["thresholds"]]
        assert fired == sorted(fired) and all(t["delivered"] for t in ready["thresholds"])
        alerts = hook.wait_for("fleet.ready_for_quote", 3)
        assert [(a["months"], a["span"]) for a in alerts] == [(n, spans[n]) for n in (1, 3, 5)]
        # A feature pass asked for after the backfill finds nothing to do.
        assert api.post(f"/fleets/{FLEET}/refresh").status_code == 202
        wait_for("the refresh", lambda: any(k.startswith("refresh:") for k in api.get("/work").json()["last"]),
                 120, 0.5)
    # The CLI asks the running daemon and prints the same readiness.
    out = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "status", "--fleet", FLEET], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "readiness: 5/6 months with features, latest span 2025-10..2026-02" in out.stdout, out.stdout
    assert "to pull: 0 months" in out.stdout and "latest 3 months: reached 2025-12..2026-02, alerted" in out.stdout
    assert daemon.stop() == 0
    assert len(hook.events("fleet.ready_for_quote")) == 3

    with Manifest(Path(env["FLEETLAKE_DATA_DIR"]) / "manifest.duckdb", read_only=True) as m:
        newest = COMPLETE_NEWEST_FIRST[0]
        newest_start = month_bounds_ms(newest)[0]
        runs = [r for r in m.runs() if r.fleet_id == FLEET]
        flows = {(r.flow, r.version) for r in runs}
        assert len(flows) >= 7
        # The newest month's feature work ran as soon as the month was pulled, on the feature worker,
        # while the older months were still being pulled: it did not wait for the history.
        newest_started = min(r.started_at for r in runs if r.month == newest)
        older_pulled = [at for start, end, at in _gps_slices(m) if end <= newest_start]
        assert older_pulled and newest_started < max(older_pulled)
        # Months were pulled newest complete first, then back month by month, then the open one.
        pulled = m.pulled_months(FLEET)
        assert sorted(pulled, key=lambda month: pulled[month]) == COMPLETE_NEWEST_FIRST
        # Each month's features ran once: during the backfill, and never again (not at its end,
        # not on the refresh, not after the restart).
        per_window = Counter((r.flow, r.version, r.month) for r in runs)
        assert set(per_window.values()) == {1}, per_window
        assert {r.month for r in runs} == {*COMPLETE_NEWEST_FIRST, OPEN}
        assert all(r.status == "succeeded" for r in runs)
        # ...each queued by its own month's pull: none started before every slice of its month was in
        # (features never see half a month), whatever the feature worker's pace next to the pull's.
        for month in COMPLETE_NEWEST_FIRST:
            first = min(r.started_at for r in runs if r.month == month)
            assert first >= pulled[month], (month, first, pulled[month])


def test_a_backfill_killed_after_three_months_resumes_with_the_fourth_newest(world, tmp_path: Path) -> None:
    sandbox, daemon, hook, env = world
    # Slow answers keep each month's pull long enough to kill the daemon between months.
    sandbox.world.faults["samsara"] = FaultPlan(seed=1, slow=1.0, slow_seconds=0.3)
    daemon.start()
    with _api(daemon) as api:
        _consent(api)
        wait_for("three months pulled", lambda: len(_readiness(api)["months_to_pull"]) <= 3, 240, 0.1)
    daemon.kill()  # SIGKILL: no chance to finish anything
    killed_at = datetime.now(timezone.utc)
    sandbox.world.faults["samsara"] = FaultPlan()
    daemon.start()
    with _api(daemon) as api:
        wait_for("the backfill with features", lambda: _backfilled(api), 240, 1.0)
        assert _readiness(api)["span"] == ["2025-10", "2026-02"]
    assert daemon.stop() == 0

    with Manifest(Path(env["FLEETLAKE_DATA_DIR"]) / "manifest.duckdb", read_only=True) as m:
        pulled = m.pulled_months(FLEET)
        first3, fourth, rest = COMPLETE_NEWEST_FIRST[:3], COMPLETE_NEWEST_FIRST[3], COMPLETE_NEWEST_FIRST[4:]
        assert all(pulled[month] < killed_at for month in first3)
        assert pulled[fourth] > killed_at
        assert sorted(pulled, key=lambda month: pulled[month]) == COMPLETE_NEWEST_FIRST
        slices = _gps_slices(m)
        lo3, hi1 = month_bounds_ms(first3[-1])[0], month_bounds_ms(first3[0])[1]
        lo4 = month_bounds_ms(fourth)[0]
        # The first three months were not pulled again (a re-pull would move their checkpoints).
        mine = [at for start, end, at in slices if end > lo3 and start < hi1]
        assert mine and all(at < killed_at for at in mine)
        # After the restart, the first slice completed belongs to the fourth-newest month, and
        # every slice of an older month was completed after it.
        after = sorted((at, start, end) for start, end, at in slices if at > killed_at)
        assert after and after[0][2] > lo4 and after[0][1] < month_bounds_ms(fourth)[1]
        assert all(at >= pulled[fourth] for at, start, end in after if end <= lo4), rest
        runs = Counter((r.flow, r.version, r.month) for r in m.runs() if r.fleet_id == FLEET and r.status == "succeeded")
        assert all(n == 1 for (_, _, month), n in runs.items() if month != OPEN), runs
    assert [a["months"] for a in hook.events("fleet.ready_for_quote")] == [1, 3, 5]
