"""Every CLI error is one line naming what is wrong, with a non-zero exit, whether a daemon runs or not."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.cli import run_cli
from tests.support.daemon import DaemonProcess
from tests.support.ports import free_port

TOKEN = "cli-errors-" + "x" * 16
FLEET = "acme-freight"


def _one_line(r: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The error: exactly one line on stderr, no traceback, the exit code, and the words that matter."""
    err = r.stderr.strip()
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1, r.stderr
    assert err.startswith("fleetlake"), err
    for w in words:
        assert w in err, (w, err)
    return err


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], SandboxServer]]:
    """A data dir holding one backfilled fleet (1 month of 2 vehicles), and its sandbox, still serving."""
    tmp = tmp_path_factory.mktemp("cli")
    base = default_config(seed=5, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp / "data"), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
               "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_HISTORY_MONTHS": "1",
               "FLEETLAKE_API_TOKEN": TOKEN, "FLEETLAKE_HTTP_PORT": str(free_port())}
        env.pop("FLEETLAKE_CONFIG_FILE", None)
        url = run_cli(env, "connect", "samsara", "--fleet", FLEET).stdout.strip()
        q = httpx.URL(loopback.get(url + f"&fleet={FLEET}").headers["location"]).params
        assert run_cli(env, "connect", "samsara", "--fleet", FLEET, f"--code={q['code']}",
                       f"--state={q['state']}").returncode == 0
        r = run_cli(env, "backfill", FLEET)
        assert r.returncode == 0, r.stdout + r.stderr
        yield env, sandbox


# The same asks, answered by the local manifest and by a running daemon's API.
UNKNOWN_FLEET = [("backfill", "nope"), ("refresh", "--fleet", "nope"), ("status", "--fleet", "nope"),
                 ("features", "nope")]


@pytest.mark.parametrize("args", UNKNOWN_FLEET, ids=[a[0] for a in UNKNOWN_FLEET])
def test_an_unknown_fleet_is_one_line_without_a_daemon(landed, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    _one_line(run_cli(env, *args), 2, "unknown fleet nope")


def test_an_unknown_fleet_is_one_line_with_a_daemon_holding_the_manifest(landed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    d = DaemonProcess(env, tmp_path / "daemon.log")
    d.start()
    try:
        for args in UNKNOWN_FLEET:
            _one_line(run_cli(env, *args), 2, "unknown fleet nope")
        # And a known fleet still answers through the daemon.
        assert run_cli(env, "status", "--fleet", FLEET).returncode == 0
    finally:
        d.stop()


def test_a_month_without_features_says_which_months_have_them(landed) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    err = _one_line(run_cli(env, "features", FLEET, "--month", "2031-01"), 1, "no features for 2031-01")
    assert "months with features: 2026-" in err
    out = run_cli(env, "features", FLEET)
    assert out.returncode == 0 and "e+0" not in out.stdout  # numbers for people: 2,391, not 2.39e+03


def test_settings_in_the_forms_people_type_and_bad_arguments(landed) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    assert run_cli({**env, "FLEETLAKE_READINESS_MONTHS": "3,6,12"}, "status").returncode == 0
    r = run_cli(env, "gc", "--retention-hours", "-5")
    assert r.returncode == 2 and "a retention is 0 hours or more" in r.stderr and "Traceback" not in r.stderr


def test_a_misspelt_setting_is_named_by_every_command_and_refused_by_run(landed) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    typo = {**env, "FLEETLAKE_FLOW_WORKRS": "3"}
    status = run_cli(typo, "status")
    assert status.returncode == 0 and "FLEETLAKE_FLOW_WORKRS is not a fleetlake setting" in status.stderr
    _one_line(run_cli(typo, "run", timeout=60), 2, "FLEETLAKE_FLOW_WORKRS", "did you mean FLEETLAKE_FLOW_WORKERS")


def test_run_refuses_a_bad_token_key_and_a_taken_port_before_it_starts(landed) -> None:  # type: ignore[no-untyped-def]
    env, _ = landed
    _one_line(run_cli({**env, "FLEETLAKE_TOKEN_KEY": "not-a-fernet-key"}, "run", timeout=60), 2,
              "FLEETLAKE_TOKEN_KEY", "fleetlake keygen")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _one_line(run_cli({**env, "FLEETLAKE_HTTP_PORT": str(port)}, "run", timeout=60), 2,
                  "FLEETLAKE_HTTP_PORT", f"127.0.0.1:{port} is in use")
