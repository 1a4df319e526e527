"""Settings: environment, TOML file, precedence, and errors that name the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from common.errors import ConfigError
from ingest.flows.registry import active_flows
from ingest.wiring.settings import load_settings


def test_toml_file_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "fleetlake.toml"
    cfg.write_text('store_url = "s3://bucket/lake"\nhttp_port = 9100\nrefresh_cron = "0 4 2 * *"\n'
                   'api_token = "from-file"\n')
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("FLEETLAKE_HTTP_PORT", "9200")
    s = load_settings()
    assert (s.store_url, s.http_port, s.refresh_cron) == ("s3://bucket/lake", 9200, "0 4 2 * *")
    assert s.api_token is not None and s.api_token.get_secret_value() == "from-file"
    assert "from-file" not in repr(s) and "from-file" not in str(s.model_dump())


@pytest.mark.parametrize("body, setting", [('http_port = "lots"', "FLEETLAKE_HTTP_PORT"),
                                           ('refresh_cron = "every day"', "FLEETLAKE_REFRESH_CRON"),
                                           ('sandbox_url = "ftp://x"', "FLEETLAKE_SANDBOX_URL"),
                                           ('no_such_setting = 1', "FLEETLAKE_NO_SUCH_SETTING")])
def test_a_bad_value_in_the_file_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                                   setting: str) -> None:
    cfg = tmp_path / "fleetlake.toml"
    cfg.write_text(body + "\n")
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(cfg))
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == setting


def test_a_named_config_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == "FLEETLAKE_CONFIG_FILE"


def test_active_flows_come_from_the_flows_file(tmp_path: Path) -> None:
    f = tmp_path / "flows.toml"
    f.write_text('active = ["distance@2", "harsh@3"]\n')
    assert [(x.name, x.version) for x in active_flows(f)] == [("distance", 2), ("harsh", 3)]
    f.write_text('active = ["distance@1"]\n')  # retired (issue 24): its table stays, its code is gone
    with pytest.raises(ConfigError, match="no flow 'distance@1'; available: .*distance@2"):
        active_flows(f)
    f.write_text('active = ["distance"]\n')
    with pytest.raises(ConfigError, match="<flow>@<version>"):
        active_flows(f)
    with pytest.raises(ConfigError, match="does not exist"):
        active_flows(tmp_path / "nope.toml")
    assert len(active_flows()) == 13  # config/flows.toml: eleven month flows (issue 26: distance@3, speed@4, harsh@4; issue 25: drivers@1), the quote, the book


def test_per_tsp_settings_are_nested_and_default_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.providers import TSPS

    monkeypatch.delenv("FLEETLAKE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("FLEETLAKE_SAMSARA__CLIENT_ID", "app-id")
    monkeypatch.setenv("FLEETLAKE_MOTIVE__RATE_PER_S", "3.5")
    s = load_settings()
    assert set(TSPS) <= set(type(s).model_fields)  # every registered TSP has its settings group
    assert s.tsp("samsara").client_id == "app-id" and s.tsp("samsara").api_url == TSPS["samsara"].api_url
    assert s.tsp("motive").rate_per_s == 3.5 and s.tsp("samsara").rate_per_s == TSPS["samsara"].rate_per_s
    monkeypatch.setenv("FLEETLAKE_MOTIVE__RATE_PER_S", "-1")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == "FLEETLAKE_MOTIVE__RATE_PER_S"


def test_the_flat_per_tsp_names_of_earlier_releases_still_work_with_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_SAMSARA_CLIENT_SECRET", "old-style-secret")
    cfg = tmp_path / "fleetlake.toml"
    cfg.write_text('motive_api_url = "http://127.0.0.1:1/motive"\n')
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(cfg))
    s = load_settings()
    messages = " ".join(s.deprecations)
    assert len(s.deprecations) == 2  # one note per old name, however often a source is read
    assert "FLEETLAKE_SAMSARA__CLIENT_SECRET" in messages and "[motive]" in messages
    assert "old-style-secret" not in messages
    assert s.tsp("samsara").client_secret is not None
    assert s.tsp("samsara").client_secret.get_secret_value() == "old-style-secret"
    assert s.tsp("motive").api_url == "http://127.0.0.1:1/motive"
    # The new name wins over the old one.
    monkeypatch.setenv("FLEETLAKE_SAMSARA__CLIENT_SECRET", "new-style-secret")
    s = load_settings()
    assert s.deprecations and s.tsp("samsara").client_secret.get_secret_value() == "new-style-secret"  # type: ignore[union-attr]


def test_a_deprecated_name_is_logged_by_every_command(tmp_path: Path) -> None:
    """Python hides a DeprecationWarning raised inside a library: the note goes to the command's log."""
    secret = "old-style-" + uuid.uuid4().hex
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_LOG_FORMAT": "json",
           "FLEETLAKE_SAMSARA_CLIENT_SECRET": secret, "FLEETLAKE_SAMSARA__CLIENT_ID": "app"}
    env.pop("FLEETLAKE_CONFIG_FILE", None)
    for argv in (["status"], ["gc", "--dry-run"]):
        r = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", *argv], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        notes = [json.loads(line) for line in r.stderr.splitlines() if '"fleetlake.settings"' in line]
        assert [(n["level"], n["msg"]) for n in notes] == [
            ("warning", "FLEETLAKE_SAMSARA_CLIENT_SECRET is deprecated: use FLEETLAKE_SAMSARA__CLIENT_SECRET")], argv
        assert secret not in r.stdout + r.stderr


@pytest.mark.parametrize("typed", ["1,3", "1, 3", "[1, 3]", "3 1"])
def test_a_list_setting_takes_commas_or_json(monkeypatch: pytest.MonkeyPatch, typed: str) -> None:
    monkeypatch.delenv("FLEETLAKE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("FLEETLAKE_READINESS_MONTHS", typed)
    monkeypatch.setenv("FLEETLAKE_TRUSTED_PROXIES", typed.replace("1", "10.0.0.1").replace("3", "10.0.8.0/24"))
    s = load_settings()
    assert s.readiness_months == [1, 3]
    assert sorted(s.trusted_proxies) == ["10.0.0.1/32", "10.0.8.0/24"]


@pytest.mark.parametrize("name, value, problem", [
    ("FLEETLAKE_TRUSTED_PROXIES", "10.0.0.300", "not an IP address or CIDR"),
    ("FLEETLAKE_TRUSTED_PROXIES", "[10.0.0.1", "not a JSON list"),
    ("FLEETLAKE_READINESS_MONTHS", "3,six", "integer"),
    ("FLEETLAKE_CONSOLE_PASSWORD", "short-pass", "at least 12 characters"),
    ("FLEETLAKE_CONSOLE_AUTH_HEADER", "X-Forwarded-User", "needs FLEETLAKE_TRUSTED_PROXIES"),
    ("FLEETLAKE_CONSOLE_AUTH_HEADER", "X Forwarded User", "pattern"),
])
def test_a_bad_proxy_or_console_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                            problem: str) -> None:
    monkeypatch.delenv("FLEETLAKE_CONFIG_FILE", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == name and problem in str(e.value)
    assert "short-pass" not in str(e.value)


def test_the_retired_backfill_poll_is_accepted_with_a_note_that_says_what_replaced_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_BACKFILL_POLL_S", "30")
    s = load_settings()
    assert [n for n in s.deprecations if "FLEETLAKE_BACKFILL_POLL_S" in n and "OAuth callback" in n]
    monkeypatch.delenv("FLEETLAKE_BACKFILL_POLL_S")
    assert not load_settings().deprecations
