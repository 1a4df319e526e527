"""Stuck work is noticed once: a hung TSP (every Samsara response trickles whitespace and never
ends while the sandbox's `hang` fault is on) gives exactly one alert and, once it is switched off,
one recovery on a local webhook receiver; meanwhile the fleet shows `stuck` in /fleets and the
gauge counts it, and the Motive fleet is never reported stuck and is pulled once Samsara answers.
Real `fleetlake run`, the sandbox and the receiver, all over HTTP; stuck_after of a few seconds.

The daemon runs work on one thread, so the Motive fleet's refresh waits behind the hung pull:
with fleets pulled in parallel it would go on meanwhile.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from ingest.runtime.stuck import Unit, WorkWatch
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.webhook import webhook_receiver

TOKEN = "stuck-" + uuid.uuid4().hex
HUNG, OTHER = "acme-freight", "bluebird-logistics"


def _pulls(rec_events: list[dict], state: str) -> list[dict]:
    return [e for e in rec_events if e.get("group") == "pull:samsara" and e.get("state") == state]


def test_a_hung_tsp_alerts_once_and_recovers_once(tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    flows = tmp_path / "flows.toml"
    flows.write_text('active = ["distance@2"]\n')
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox, \
            webhook_receiver() as rec, httpx.Client(base_url=sandbox.base_url, timeout=30) as tsp:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "1",
               "FLEETLAKE_LOG_FORMAT": "json", "FLEETLAKE_FLOWS_FILE": str(flows),
               "FLEETLAKE_STUCK_AFTER_S": "4", "FLEETLAKE_ALERT_WEBHOOK_URL": rec.url}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with httpx.Client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
                for fleet, name in ((HUNG, "samsara"), (OTHER, "motive")):
                    url = api.post(f"/connect/{name}", params={"fleet_id": fleet}).json()["consent_url"]
                    assert httpx.get(httpx.get(url).headers["location"], timeout=60).status_code == 200

                def idle() -> bool:
                    work = api.get("/work").json()
                    fleets = api.get("/fleets").json()
                    return (not work["queued"] and work["running"] is None and len(fleets) == 2
                            and all(f["status"] == "active" for f in fleets))
                wait_for("both backfills", idle, 240, 0.5)
                assert _pulls(rec.events(), "open") == []  # healthy pulls were never stuck

                tsp.post("/samsara/_sandbox/faults/samsara", json={"hang": 1.0})
                assert api.post("/refresh").status_code == 202
                # (A feature pass whose first window takes longer than these 4 s may alert on its own
                # group, "features": that is the rule working, not this incident.)
                opened = wait_for("the stuck alert", lambda: _pulls(rec.events(), "open"), 120, 0.2)
                assert opened[0]["members"] == [HUNG] and opened[0]["event"] == "work.stuck"
                fleets = {f["fleet_id"]: f for f in api.get("/fleets").json()}
                assert "no progress" in fleets[HUNG]["stuck"] and "stuck" not in fleets[OTHER]
                metrics = httpx.get(f"{d.base}/metrics").text
                assert 'fleetlake_work_stuck{group="pull:samsara"} 1.0' in metrics

                def refreshed(fleet: str) -> str | None:
                    return api.get("/work").json()["last"].get(f"refresh:{fleet}")
                # The other fleet's refresh (its own work item, on another worker) finishes while
                # the hung one is still stuck: one TSP hanging holds nobody else up.
                other = wait_for("the other fleet's refresh", lambda: refreshed(OTHER), 240, 0.5)
                assert other.startswith("ok") and "fleet active" in other, other
                assert not _pulls(rec.events(), "recovered")

                tsp.post("/samsara/_sandbox/faults/samsara", json={})  # the TSP answers again
                wait_for("the recovery", lambda: _pulls(rec.events(), "recovered"), 120, 0.2)
                outcome = wait_for("the hung fleet's refresh", lambda: refreshed(HUNG), 240, 0.5)
                assert outcome.startswith("ok") and "fleet active" in outcome, outcome
                assert "stuck" not in str(api.get("/fleets").json())
                assert 'fleetlake_work_stuck{group="pull:samsara"} 0.0' in httpx.get(f"{d.base}/metrics").text
            events = rec.events()
            assert len(_pulls(events, "open")) == 1 and len(_pulls(events, "recovered")) == 1, events
            assert not [e for e in events if OTHER in e.get("members", [])], events
            assert TOKEN not in str(events)
        finally:
            d.kill()


def test_work_far_longer_than_its_history_is_stuck_though_it_moves() -> None:
    now = [0.0]
    watch = WorkWatch(stuck_after_s=100, factor=5.0, clock=lambda: now[0])
    unit = Unit("refresh", "acme-freight", "samsara")
    for _ in range(3):  # three refreshes of 10 s each
        watch.started(unit)
        now[0] += 10
        watch.finished(unit)
    watch.started(unit)
    for _ in range(6):  # pages keep landing, but it runs 60 s: over 5x the median of 10 s
        now[0] += 10
        watch.progressed("acme-freight")
    [stuck] = watch.check()
    assert stuck.unit == unit and "median 10 s" in stuck.reason
    # An unrelated fleet's progress does not move it; a failed run does not join the history.
    watch.finished(unit, completed=False)
    watch.started(unit)
    now[0] += 40
    assert watch.check() == []  # 40 s < 5 x 10 s, and 40 s < stuck_after
    now[0] += 70
    watch.progressed("other-fleet")
    assert [s.reason.startswith("no progress") for s in watch.check()] == [True]
