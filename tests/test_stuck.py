"""Stuck work is noticed once: a hung TSP (every Samsara response trickles whitespace and never
ends while the sandbox's `hang` fault is on) gives exactly one alert and, once it is switched off,
one recovery on a local webhook receiver; meanwhile the fleet shows `stuck` in /fleets and the
gauge counts it, and the Motive fleet is never reported stuck and is pulled once Samsara answers.
Real `fleetlake run`, the sandbox and the receiver, all over HTTP; stuck_after of a few seconds.

The same holds whatever the request deadline is next to stuck_after: with a deadline shorter than
the hang, the hung pull fails (and is retried, and fails again) while the TSP still hangs, and that
is one incident, recovered only when the TSP answers; with the default ratio (deadline 120 s,
stuck 900 s: the pull always fails first) the deadline itself opens the incident.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from common.errors import DeadlineExceeded, TspRequestError, TspUnavailable
from common.states import WorkKind
from ingest.runtime.stuck import Unit, WorkWatch
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.webhook import Receiver, webhook_receiver

TOKEN = "stuck-" + uuid.uuid4().hex
HUNG, OTHER = "acme-freight", "bluebird-logistics"


def _pulls(rec_events: list[dict], state: str) -> list[dict]:
    return [e for e in rec_events if e.get("group") == "pull:samsara" and e.get("state") == state]


@dataclass
class _Run:
    api: httpx.Client
    tsp: httpx.Client
    rec: Receiver
    daemon: DaemonProcess

    def hang(self, on: bool) -> None:
        self.tsp.post("/samsara/_sandbox/faults/samsara", json={"hang": 1.0} if on else {})

    def fleets(self) -> dict[str, dict]:
        return {f["fleet_id"]: f for f in self.api.get("/fleets").json()}

    def failed_pulls(self) -> float:
        """Work items on the hung fleet that ended failed (its refresh, then its retries)."""
        text = loopback.get(f"{self.daemon.base}/metrics").text
        return sum(float(m) for m in re.findall(r'fleetlake_work_total\{kind="(?:refresh|backfill)",status="failed"\} (\S+)',
                                                 text))


@contextmanager
def _daemon(tmp_path: Path, **settings: str) -> Iterator[_Run]:
    """A real daemon with both fleets connected and backfilled, a sandbox and a webhook receiver."""
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    flows = tmp_path / "flows.toml"
    flows.write_text('active = ["distance@2"]\n')
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox, \
            webhook_receiver() as rec, loopback.client(base_url=sandbox.base_url, timeout=30) as tsp:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
               "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_HISTORY_MONTHS": "1",
               "FLEETLAKE_LOG_FORMAT": "json", "FLEETLAKE_FLOWS_FILE": str(flows),
               "FLEETLAKE_ALERT_WEBHOOK_URL": rec.url, **{f"FLEETLAKE_{k.upper()}": v for k, v in settings.items()}}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
                for fleet, name in ((HUNG, "samsara"), (OTHER, "motive")):
                    url = api.post(f"/connect/{name}", params={"fleet_id": fleet}).json()["consent_url"]
                    assert loopback.get(loopback.get(url).headers["location"], timeout=60).status_code == 200

                def idle() -> bool:
                    work = api.get("/work").json()
                    fleets = api.get("/fleets").json()
                    return (not work["queued"] and work["running"] is None and len(fleets) == 2
                            and all(f["status"] == "active" for f in fleets))
                wait_for("both backfills", idle, 240, 0.5)
                assert _pulls(rec.events(), "open") == []  # healthy pulls were never stuck
                yield _Run(api, tsp, rec, d)
        finally:
            d.kill()


@pytest.mark.slow
def test_a_hung_tsp_alerts_once_and_recovers_once(tmp_path: Path) -> None:
    with _daemon(tmp_path, stuck_after_s="10") as run:
        api, rec = run.api, run.rec
        run.hang(True)
        assert api.post("/refresh").status_code == 202
        # (A feature pass whose first window takes longer than these 10 s may alert on its own
        # group, "features": that is the rule working, not this incident.)
        opened = wait_for("the stuck alert", lambda: _pulls(rec.events(), "open"), 120, 0.2)
        assert opened[0]["members"] == [HUNG] and opened[0]["event"] == "work.stuck"
        fleets = run.fleets()
        assert "no progress" in fleets[HUNG]["stuck"] and "stuck" not in fleets[OTHER]
        metrics = loopback.get(f"{run.daemon.base}/metrics").text
        assert 'fleetlake_work_stuck{group="pull:samsara"} 1.0' in metrics

        def refreshed(fleet: str) -> str | None:
            return api.get("/work").json()["last"].get(f"refresh:{fleet}")
        # The other fleet's refresh (its own work item, on another worker) finishes while
        # the hung one is still stuck: one TSP hanging holds nobody else up.
        other = wait_for("the other fleet's refresh", lambda: refreshed(OTHER), 240, 0.5)
        assert other.startswith("ok") and "fleet active" in other, other
        assert not _pulls(rec.events(), "recovered")

        run.hang(False)  # the TSP answers again
        wait_for("the recovery", lambda: _pulls(rec.events(), "recovered"), 120, 0.2)
        outcome = wait_for("the hung fleet's refresh", lambda: refreshed(HUNG), 240, 0.5)
        assert outcome.startswith("ok") and "fleet active" in outcome, outcome
        assert "stuck" not in str(api.get("/fleets").json())
        assert 'fleetlake_work_stuck{group="pull:samsara"} 0.0' in loopback.get(f"{run.daemon.base}/metrics").text
        events = rec.events()
        assert len(_pulls(events, "open")) == 1 and len(_pulls(events, "recovered")) == 1, events
        assert not [e for e in events if OTHER in e.get("members", [])], events
        assert TOKEN not in str(events)


# (request deadline, stuck after), scaled down. "short deadline", the case: a deadline
# shorter than the hang, so the pull is stuck, then fails on the deadline, is retried and fails
# again, all while the TSP hangs. "default ratio", 120 s to 900 s: no unit ever idles for
# stuck_after, so only the deadline can tell.
# The default ratio at a test's scale (120 s : 900 s is about 10 s : 75 s); a deadline of a few seconds
# failed healthy pages on a loaded 2-core machine, which is the rule working, not the incident.
# Likewise stuck_after: with 4 s, a healthy backfill at load 10 once went 4 s without landing a page
# (its month commits), so the backfill's "never stuck" check failed; 6-10 s leave that margin.
RATIOS = {"short deadline": ("12", "6"), "default ratio": ("10", "75")}


@pytest.mark.slow
@pytest.mark.parametrize("ratio", list(RATIOS))
def test_a_hung_tsp_is_one_incident_whatever_the_deadline(ratio: str, tmp_path: Path) -> None:
    deadline, stuck_after = RATIOS[ratio]
    with _daemon(tmp_path, request_deadline_s=deadline, stuck_after_s=stuck_after, retry_failed_s="10") as run:
        api, rec = run.api, run.rec
        before = run.failed_pulls()
        run.hang(True)
        assert api.post("/refresh").status_code == 202
        opened = wait_for("the stuck alert", lambda: _pulls(rec.events(), "open"), 120, 0.2)
        assert opened[0]["members"] == [HUNG], opened
        if ratio == "default ratio":
            # Opened by the pull that ran into the deadline, long before anything idled 30 s.
            assert f"no complete answer within {deadline} s" in opened[0]["text"], opened
        # The hung pull fails, is retried (FLEETLAKE_RETRY_FAILED_S) and fails again while the TSP
        # hangs: each ending is no recovery, each retry no new alert.
        wait_for("a retried pull failing again", lambda: run.failed_pulls() >= before + 2, 180, 0.5)
        view = run.fleets()[HUNG]
        assert view["status"] == "failed" and f"within {deadline} s" in view["error"], view
        assert len(_pulls(rec.events(), "open")) == 1 and not _pulls(rec.events(), "recovered"), rec.events()
        assert 'fleetlake_work_stuck{group="pull:samsara"} 1.0' in loopback.get(f"{run.daemon.base}/metrics").text

        run.hang(False)  # the TSP answers again: the next retry lands and completes
        wait_for("the recovery", lambda: _pulls(rec.events(), "recovered"), 180, 0.2)
        wait_for("the hung fleet active again", lambda: run.fleets()[HUNG]["status"] == "active", 120, 0.5)
        events = rec.events()
        assert len(_pulls(events, "open")) == 1 and len(_pulls(events, "recovered")) == 1, events
        assert not [e for e in events if OTHER in e.get("members", [])], events


def test_work_far_longer_than_its_history_is_stuck_though_it_moves() -> None:
    now = [0.0]
    watch = WorkWatch(stuck_after_s=100, factor=5.0, clock=lambda: now[0])
    unit = Unit(WorkKind.REFRESH, "acme-freight", "samsara")
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


def test_a_tsp_failing_pulls_in_a_row_is_an_incident_until_a_fleet_of_it_really_lands() -> None:
    now = [0.0]
    watch = WorkWatch(stuck_after_s=900, failed_pulls=2, clock=lambda: now[0])
    a, b = Unit(WorkKind.REFRESH, "fleet-a", "samsara"), Unit(WorkKind.REFRESH, "fleet-b", "samsara")
    down = TspUnavailable("samsara", "GET /fleet/vehicles gave up after 8 attempts: HTTP 503")
    watch.started(a)
    watch.finished(a, completed=False, error=down)
    assert watch.incidents() == []  # one failed pull is a fleet's bad luck
    watch.started(b)
    watch.progressed("fleet-b")  # a page landed, then the TSP gave up: no real progress
    watch.finished(b, completed=False, error=down)
    [inc] = watch.incidents()
    assert inc.group == "pull:samsara" and inc.members == {"fleet-a", "fleet-b"} and "2 pulls" in inc.detail
    # Retried while the TSP is still down: a page lands but no month does; the incident stays.
    watch.started(a)
    watch.progressed("fleet-a")
    watch.finished(a, completed=False, error=down)
    assert [i.members for i in watch.incidents()] == [{"fleet-a", "fleet-b"}]
    # A month of fleet-a lands: its trouble is over; fleet-b's is not, until its pull completes.
    watch.started(a)
    watch.landed("fleet-a")
    assert [i.members for i in watch.incidents()] == [{"fleet-b"}]
    watch.finished(a)
    watch.started(b)
    watch.finished(b)
    assert watch.incidents() == []
    # Our own request's fault (a 4xx) is no sign of the TSP: it never counts.
    for unit in (a, b, a):
        watch.started(unit)
        watch.finished(unit, completed=False, error=TspRequestError("samsara", "GET /x answered 400", 400))
    assert watch.incidents() == []


def test_a_deadline_is_trouble_at_once_and_a_stuck_pull_that_fails_stays_in_trouble() -> None:
    now = [0.0]
    watch = WorkWatch(stuck_after_s=4, failed_pulls=2, clock=lambda: now[0])
    a = Unit(WorkKind.REFRESH, "fleet-a", "samsara")
    watch.started(a)
    watch.finished(a, completed=False, error=DeadlineExceeded("samsara", "GET /fleet/x: no complete answer"))
    assert [(i.group, i.members) for i in watch.incidents()] == [("pull:samsara", {"fleet-a"})]
    watch.forget(["fleet-a"])  # revoked or off-boarded: it will never land again
    assert watch.incidents() == []
    # Stuck while running: trouble that clears if the same run moves again...
    watch.started(a)
    now[0] += 5
    assert [s.unit for s in watch.check()] == [a]
    watch.progressed("fleet-a")
    assert watch.incidents() == [] and watch.check() == []
    # ...but not when the run ends by failing: that is the TSP still hanging, not a recovery.
    now[0] += 5
    assert watch.check() and watch.incidents()
    watch.finished(a, completed=False, error=None)
    [inc] = watch.incidents()
    assert inc.members == {"fleet-a"} and "no progress for 5 s" in inc.detail
    watch.started(a)
    watch.progressed("fleet-a")  # a page of the retry: not enough
    assert watch.incidents()
    watch.finished(a)  # the retry completes
    assert watch.incidents() == []
