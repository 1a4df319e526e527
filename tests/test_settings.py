"""Settings: environment, TOML file, precedence, and errors that name the setting."""

from __future__ import annotations

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
    f.write_text('active = ["distance@1", "harsh@1"]\n')
    assert [(x.name, x.version) for x in active_flows(f)] == [("distance", 1), ("harsh", 1)]
    f.write_text('active = ["distance@9"]\n')
    with pytest.raises(ConfigError, match="no flow 'distance@9'; available: .*distance@1"):
        active_flows(f)
    f.write_text('active = ["distance"]\n')
    with pytest.raises(ConfigError, match="<flow>@<version>"):
        active_flows(f)
    with pytest.raises(ConfigError, match="does not exist"):
        active_flows(tmp_path / "nope.toml")
    assert len(active_flows()) == 7  # the repo's config/flows.toml


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


def test_the_flat_per_tsp_names_of_earlier_releases_still_work_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_SAMSARA_CLIENT_SECRET", "old-style-secret")
    cfg = tmp_path / "fleetlake.toml"
    cfg.write_text('motive_api_url = "http://127.0.0.1:1/motive"\n')
    monkeypatch.setenv("FLEETLAKE_CONFIG_FILE", str(cfg))
    with pytest.warns(DeprecationWarning) as seen:
        s = load_settings()
    messages = " ".join(str(w.message) for w in seen)
    assert "FLEETLAKE_SAMSARA__CLIENT_SECRET" in messages and "[motive]" in messages
    assert "old-style-secret" not in messages
    assert s.tsp("samsara").client_secret is not None
    assert s.tsp("samsara").client_secret.get_secret_value() == "old-style-secret"
    assert s.tsp("motive").api_url == "http://127.0.0.1:1/motive"
    # The new name wins over the old one.
    monkeypatch.setenv("FLEETLAKE_SAMSARA__CLIENT_SECRET", "new-style-secret")
    with pytest.warns(DeprecationWarning):
        s = load_settings()
    assert s.tsp("samsara").client_secret.get_secret_value() == "new-style-secret"  # type: ignore[union-attr]
