"""Settings: environment variables with the FLEETLAKE_ prefix, or a TOML file, each default documented here.

Precedence: explicit overrides, then FLEETLAKE_* environment variables, then the TOML file named
by FLEETLAKE_CONFIG_FILE (default config/fleetlake.toml when it exists; keys are the setting
names in lower case, e.g. `store_url = "s3://bucket/lake"`). Validated at start-up; an error names
the setting. Secrets are SecretStr and only unwrapped at the point of use.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from common.errors import ConfigError
from common.states import Tsp
from partitions.store import S3Options

CONFIG_FILE_ENV = "FLEETLAKE_CONFIG_FILE"
DEFAULT_CONFIG_FILE = Path("config/fleetlake.toml")
MIN_CONSOLE_PASSWORD = 12  # the login is throttled, not unguessable: a short password would still fall

log = logging.getLogger("fleetlake.settings")

# Deprecation notes of the load under way (load_settings sets it). Settings load before logging is
# configured, and Python's default filters hide a DeprecationWarning raised inside pydantic: the
# notes are kept with the settings and logged once the command has configured logging.
_NOTES: ContextVar[list[str] | None] = ContextVar("fleetlake_settings_notes", default=None)


def _deprecated(message: str) -> None:
    notes = _NOTES.get()
    if notes is None:
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    else:
        notes.append(message)


def _listed(v: object) -> object:
    """A list setting as people type it in the environment: JSON (`[1, 3]`, `["10.0.0.1"]`), the
    same without quotes (`[10.0.0.1, 10.0.0.2]`), or words separated by commas or spaces (`1,3`);
    a TOML array arrives as a list already."""
    if not isinstance(v, str):
        return v
    text = v.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            if not text.endswith("]"):
                raise ValueError("not a JSON list; write it as [a, b] or a,b") from None
            text = text[1:-1]
    return [part.strip("'\"") for part in re.split(r"[\s,]+", text) if part.strip("'\"")]


class TspSettings(BaseModel):
    """One TSP's OAuth app and endpoints; unset values take the TSP registry's production defaults."""
    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(None, description="OAuth app client id")
    client_secret: SecretStr | None = Field(None, description="OAuth app client secret")
    api_url: str | None = Field(None, description="API base URL (default: the TSP's production API)")
    auth_url: str | None = Field(None, description="OAuth base URL (default: the TSP's production OAuth host)")
    rate_per_s: float | None = Field(None, gt=0, description="requests per second per fleet token (default: the "
                                                              "TSP's published limit)")

    @field_validator("api_url", "auth_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return _http_url(v)


@dataclass(frozen=True)
class TspConfig:
    """A TSP's settings with the registry's defaults filled in."""
    tsp: str
    api_url: str
    auth_url: str
    client_id: str | None
    client_secret: SecretStr | None
    rate_per_s: float


def _http_url(v: str | None) -> str | None:
    if v is not None and not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return v.rstrip("/") if v else v


class _DeprecatedTspEnv(PydanticBaseSettingsSource):
    """The flat per-TSP names of earlier releases (FLEETLAKE_SAMSARA_CLIENT_ID, ...), still read, with a warning."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole nested dict

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for tsp in Tsp:
            for key in TspSettings.model_fields:
                old = f"FLEETLAKE_{tsp}_{key}".upper()
                if old in os.environ:
                    _deprecated(f"{old} is deprecated: use FLEETLAKE_{tsp.upper()}__{key.upper()}")
                    found.setdefault(tsp, {})[key] = os.environ[old]
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLAKE_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(Path("fleetlake-data"),
                           description="Local state: the manifest, spool and cache live here (default ./fleetlake-data)")
    store_url: str | None = Field(None, description="file:///abs/path or s3://bucket/prefix "
                                                    "(default file://<data_dir>/store)")
    manifest_path: Path | None = Field(None, description="DuckDB manifest file (default <data_dir>/manifest.duckdb)")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:8333 "
                                                          "(default: AWS)")
    s3_region: str | None = Field(None, description="S3 region (default us-east-1)")
    s3_access_key_id: str | None = Field(None, description="S3 access key (default: boto3's credential chain)")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key (default: boto3's chain)")
    writer_memory_limit: str = Field("1GB", description="DuckDB memory limit for month merges; spills beyond it")
    hos_lookback_days: int = Field(14, ge=0, le=92, description="a month's drivers and hours-of-service data "
                                   "(assignments, duty-status logs, violations) is pulled again, whole, by every "
                                   "refresh until it ended this many days ago: drivers edit their logs afterwards "
                                   "(default 14)")
    flows_file: Path | None = Field(None, description="active feature flows, TOML (default config/flows.toml; "
                                                      "every flow's newest version when that file is absent)")
    flow_workers: int = Field(2, ge=1, le=64, description="processes computing feature windows in parallel")
    executor: str = Field("local", pattern="^(local|ray)$", validate_default=True,
                          description="where feature windows run: local (a process pool of flow_workers) or ray "
                                      "(a Ray cluster at ray_address; needs `pip install 'fleetlake[ray]'` and an "
                                      "s3:// store_url, see docs/ray.md)")
    ray_address: str | None = Field(None, validate_default=True, description="the Ray cluster the ray executor connects to, e.g. "
                                                      "ray://head:10001 or head:6379 (required by executor=ray)")
    gc_retention_hours: float = Field(24.0, ge=0, description="keep files no Delta snapshot names this long before "
                                      "vacuuming them, so running queries keep theirs (default 24)")
    gc_interval_hours: float = Field(6.0, gt=0, description="how often the daemon vacuums the lake (default 6)")

    # --- the daemon (`fleetlake run`)
    http_host: str = Field("127.0.0.1", description="address the daemon's HTTP server binds (0.0.0.0 in the image)")
    http_port: int = Field(8080, ge=1, le=65535, description="port of the daemon's HTTP server")
    public_url: str | None = Field(None, description="URL at which TSPs redirect consenting users back to this "
                                                     "daemon (default http://<http_host>:<http_port>)")
    api_token: SecretStr | None = Field(None, description="bearer token for the JSON API; without it the API "
                                                          "refuses every request (health and metrics stay open)")
    console_password: SecretStr | None = Field(None, description="password of the web console at /, at least 12 "
                                               "characters (the API token does not log in); without it (and without "
                                               "console_auth_header) the console refuses every login")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or CIDRs of the reverse proxies in front of the daemon, e.g. "
        "10.0.0.1,10.0.8.0/24 (or JSON); only from these peers are X-Forwarded-For, -Proto and -Host believed, for "
        "the console's client address (its login lockout) and Origin check (default: none, forwarded headers are "
        "ignored)")
    console_auth_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$", description="a header, e.g. "
                                            "X-Forwarded-User, in which an authenticating proxy (SSO) names the "
                                            "signed-in user; honoured only from trusted_proxies, which the proxy "
                                            "must overwrite it on every request (default none: password only)")
    console_session_hours: float = Field(12.0, gt=0, le=24 * 30, description="how long a console login lasts "
                                                                             "(default 12 hours)")
    alert_webhook_url: SecretStr | None = Field(None, description="webhook that receives alerts (stuck work, a fleet "
                                                "ready for a quote) as Slack-compatible JSON; none: alerts are only logged")
    metrics_token: SecretStr | None = Field(None, description="bearer token /metrics requires when set (metrics "
                                                              "name customer fleets); default: /metrics is open")
    token_key: SecretStr | None = Field(None, description="Fernet master key sealing each fleet's data key, which "
                                                          "seals its TSP tokens at rest (required by "
                                                          "`run`; generate one with `fleetlake keygen`)")
    refresh_cron: str = Field("0 3 1 * *", description="monthly refresh, crontab syntax in UTC (default the 1st "
                                                       "at 03:00)")
    backfill_poll_s: int | None = Field(None, ge=1, le=3600, description="deprecated, no effect: the OAuth "
                                        "callback queues a new fleet's backfill, and the re-plan (replan_s) "
                                        "recovers one a crash lost")
    replan_s: int = Field(300, ge=5, le=86400, description="how often (and at start) pending feature windows and "
                                                           "unfinished backfills are queued, so none waits for the "
                                                           "cron")
    # --- failing dependencies: stuck work, readiness probes, S3 timeouts, the local disk (ingest/stuck.py,
    # ingest/probes.py, common/disk.py)
    stuck_after_s: int = Field(900, ge=1, le=7 * 86400, description="a pull or feature pass that lands nothing "
                                                                   "(no TSP page, no window) for this long is "
                                                                   "marked stuck and alerted (default 900); a hung "
                                                                   "TSP alerts sooner, when its request deadline "
                                                                   "fails the pull (FLEETLAKE_STUCK_FAILED_PULLS)")
    stuck_factor: float = Field(5.0, ge=1.5, le=100.0, description="also stuck: running longer than this many "
                                                                   "times the median of its last runs (same kind, "
                                                                   "same fleet)")
    stuck_failed_pulls: int = Field(2, ge=1, le=1000, description="this many pulls of one TSP's fleets failing in a "
                                    "row on the TSP's side (unavailable, malformed, too large, endless pages) open "
                                    "that TSP's stuck incident (default 2); a pull that ran into "
                                    "FLEETLAKE_REQUEST_DEADLINE_S opens it at once, so with the defaults a hung TSP "
                                    "alerts about 2 minutes in. The incident recovers when each fleet in it lands "
                                    "a month or completes a pull, never merely because the stuck pull ended")
    rebuild_missing_manifest: bool = Field(False, description="when the manifest file is missing but the store "
                                           "holds fleets or tables: false (default) refuses to start and names "
                                           "`fleetlake manifest rebuild`; true rebuilds it from the store at start")
    readyz_timeout_s: float = Field(1.5, gt=0, le=60, description="/readyz: how long each dependency probe "
                                    "(manifest, store, disk) may take; one that does not answer in time is a "
                                    "failing dependency (default 1.5, so /readyz answers within about 2 s)")
    min_free_disk_mb: float = Field(256.0, ge=0, description="/readyz fails while less than this many MB are free "
                                    "under FLEETLAKE_DATA_DIR (or a file store's directory); a write that found "
                                    "the disk full fails it until a later pull or feature pass succeeds (default "
                                    "256)")
    s3_connect_timeout_s: float = Field(5.0, gt=0, le=300, description="S3: seconds to connect (default 5)")
    s3_read_timeout_s: float = Field(20.0, gt=0, le=3600, description="S3: seconds a request may wait for the "
                                     "next byte (default 20), so a hung store fails its work instead of holding it")
    s3_max_attempts: int = Field(3, ge=1, le=20, description="S3: attempts per request, the first included "
                                 "(default 3; a hung store fails a request within about attempts x read timeout)")
    retry_failed_s: int = Field(600, ge=10, description="base delay before failed work is retried; doubles per "
                                                        "failure, at most 24 h")
    shutdown_grace_s: int = Field(60, ge=1, le=3600, description="on SIGTERM: time to finish in-flight windows")
    max_concurrent_fleets: int = Field(8, ge=1, le=256, description="fleets pulled at once, each paced by its own "
                                       "token's rate limit (default 8); a quarter of the slots (at least one, when "
                                       "there are two or more) is kept for refreshes so a backfill wave cannot "
                                       "starve them")
    pull_executor: str = Field("process", pattern="^(thread|process|ray)$",
                               description="where pull slices are fetched, decoded and spooled: process (worker "
                                           "processes, default), thread (the daemon's own threads) or ray (the "
                                           "cluster at ray_address); the daemon keeps token refresh and commits")
    pull_workers: int | None = Field(None, ge=1, le=256, description="pull worker processes (default: one per "
                                     "core)")
    pull_worker_threads: int | None = Field(None, ge=1, le=64, description="slices each pull worker runs at "
                                            "once (default: enough for every fleet in flight to run its 4 "
                                            "lanes, max_concurrent_fleets x 4 / pull workers, 4 to 64; a slice "
                                            "mostly waits on its TSP's rate limit)")
    request_deadline_s: float = Field(120.0, gt=0, le=3600, description="wall-clock limit of one TSP request, "
                                      "headers to last byte (default 120); a fleet whose server is slower fails "
                                      "alone")
    max_response_mb: float = Field(64.0, gt=0, le=4096, description="largest TSP response body after "
                                   "decompression, read as a stream (default 64 MB); a larger one fails its fleet")
    min_ping_interval_s: float = Field(1.0, gt=0, le=3600, description="the finest GPS resolution a TSP serves "
                                       "(default 1 s): a pull slice's page cap is what the slice can hold at that "
                                       "rate, so endless pages end the fleet's pull, not the daemon's day")
    clock_url: str | None = Field(None, description="a clock served over HTTP (`GET` answers {\"now_ms\": ...}) "
                                                    "instead of the system clock, for simulated time")
    apps_url: str | None = Field(None, description="OAuth app credentials and TSP URLs served over HTTP "
                                                   "(`GET` answers {tsp: {client_id, client_secret, api_url, "
                                                   "auth_url}}) instead of the per-TSP settings")
    sandbox_url: str | None = Field(None, description="shorthand for a `fleetlake sandbox` at this URL: clock_url "
                                                      "<url>/_sandbox/clock and apps_url <url>/_sandbox/apps")
    samsara: TspSettings = Field(default_factory=lambda: TspSettings(),
                                 description="Samsara: FLEETLAKE_SAMSARA__CLIENT_ID, __CLIENT_SECRET, __API_URL, "
                                             "__AUTH_URL, __RATE_PER_S ([samsara] in the TOML file)")
    motive: TspSettings = Field(default_factory=lambda: TspSettings(),
                                description="Motive: FLEETLAKE_MOTIVE__CLIENT_ID, ... as for Samsara")
    history_months: int = Field(24, ge=1, le=120, description="months of history a new fleet's backfill pulls")
    readiness_months: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [3, 6, 12], description="readiness thresholds: when a fleet's latest N complete "
        "months have features, the webhook gets `fleet.ready_for_quote` once per N (default [3, 6, 12]; env as "
        "1,3 or JSON '[1, 3]')")
    quote_months: int = Field(12, ge=1, le=60, description="the quote window: the last N complete months a "
                              "fleet's quote summary covers (quote_summary flow, GET /fleets/<id>/quote)")
    window_deadline_s: float = Field(900.0, gt=0, description="seconds a plug-in flow's window may run before "
                                     "it fails with a timeout (its worker is stopped; other windows go on)")
    log_format: str = Field("auto", pattern="^(auto|json|text)$",
                            description="auto: text on a terminal, JSON lines otherwise")

    # Deprecated setting names this load met (filled by load_settings; logged by log_deprecations).
    _deprecations: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _DeprecatedTspEnv(settings_cls)]
        if path.exists():
            sources.append(_DeprecatedTspKeys(settings_cls, path))
        elif CONFIG_FILE_ENV in os.environ:
            raise ConfigError(CONFIG_FILE_ENV, f"{path} does not exist")
        return tuple(sources)

    @field_validator("readiness_months", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _listed(v)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        out = []
        for item in v:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item[:60]!r} is not an IP address or CIDR") from None
        return out

    @field_validator("console_password")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_CONSOLE_PASSWORD:
            raise ValueError(f"at least {MIN_CONSOLE_PASSWORD} characters: logins are slowed and locked, "
                             "but a short password can still be guessed")
        return v

    @field_validator("console_auth_header")
    @classmethod
    def _behind_a_proxy(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and not info.data.get("trusted_proxies"):
            raise ValueError("needs FLEETLAKE_TRUSTED_PROXIES: the header is believed only from the proxy that sets it")
        return v

    @field_validator("readiness_months")
    @classmethod
    def _thresholds(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("every readiness threshold is a number of months, at least 1")
        return sorted(set(v))

    @field_validator("backfill_poll_s")
    @classmethod
    def _no_poll(cls, v: int | None) -> int | None:
        if v is not None:
            _deprecated("FLEETLAKE_BACKFILL_POLL_S has no effect any more: the OAuth callback queues a new fleet's "
                        "backfill, and the re-plan (FLEETLAKE_REPLAN_S) recovers one a crash lost")
        return v

    @field_validator("refresh_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        try:
            from apscheduler.triggers.cron import CronTrigger  # here: the CLI's quick commands need no scheduler

            CronTrigger.from_crontab(v, timezone="UTC")
        except ValueError as e:
            raise ValueError(f"not a crontab expression: {e}") from None
        return v

    @field_validator("public_url", "sandbox_url", "clock_url", "apps_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return _http_url(v)

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("file:///", "s3://")):
            raise ValueError("must start with file:/// or s3://")
        return v

    @field_validator("writer_memory_limit")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not v[:-2].replace(".", "").isdigit() or v[-2:].upper() not in ("MB", "GB"):
            raise ValueError("must look like 512MB or 2GB")
        return v

    # Checked at start-up, not at the first feature pass. Ray workers see only the object store.
    @field_validator("executor")
    @classmethod
    def _ray_store(cls, v: str, info: ValidationInfo) -> str:
        if v == "ray" and not str(info.data.get("store_url") or "").startswith("s3://"):
            raise ValueError("ray needs an s3:// FLEETLAKE_STORE_URL that its workers can reach")
        return v

    @field_validator("pull_executor")
    @classmethod
    def _pull_ray(cls, v: str, info: ValidationInfo) -> str:
        if v == "ray" and not info.data.get("ray_address"):
            raise ValueError("FLEETLAKE_PULL_EXECUTOR=ray needs FLEETLAKE_RAY_ADDRESS")
        return v

    @field_validator("ray_address")
    @classmethod
    def _ray_address(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("executor") == "ray" and not v:
            raise ValueError("FLEETLAKE_EXECUTOR=ray needs the cluster's address")
        return v

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or (self.data_dir.resolve() / "store").as_uri()

    @property
    def resolved_manifest_path(self) -> Path:
        return (self.manifest_path or self.data_dir / "manifest.duckdb").resolve()

    @property
    def resolved_clock_url(self) -> str | None:
        return self.clock_url or (f"{self.sandbox_url}/_sandbox/clock" if self.sandbox_url else None)

    @property
    def resolved_apps_url(self) -> str | None:
        return self.apps_url or (f"{self.sandbox_url}/_sandbox/apps" if self.sandbox_url else None)

    @property
    def work_dir(self) -> Path:
        return (self.data_dir / "work").resolve()

    @property
    def resolved_public_url(self) -> str:
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host
        return self.public_url or f"http://{host}:{self.http_port}"

    def tsp(self, name: str) -> TspConfig:
        """The settings of one TSP of the registry, defaults filled in."""
        from connectors.providers import tsp_spec  # here: loading the connectors is not a setting's business

        spec = tsp_spec(name)
        own: TspSettings = getattr(self, name)
        return TspConfig(name, own.api_url or spec.api_url, own.auth_url or spec.auth_url, own.client_id,
                         own.client_secret, own.rate_per_s or spec.rate_per_s)

    def redirect_uri(self, tsp: str) -> str:
        return f"{self.resolved_public_url}/oauth/{tsp}/callback"

    def s3_options(self) -> S3Options:
        secret = self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
        return S3Options(self.s3_endpoint_url, self.s3_region, self.s3_access_key_id, secret,
                         connect_timeout_s=self.s3_connect_timeout_s, read_timeout_s=self.s3_read_timeout_s,
                         max_attempts=self.s3_max_attempts)

    @property
    def deprecations(self) -> tuple[str, ...]:
        """What this load read under a deprecated name (each note names the new one)."""
        return self._deprecations

    def log_deprecations(self) -> None:
        """Log the deprecation notes and unknown setting names; a command calls this once it has configured logging."""
        for note in self._deprecations:
            log.warning("%s", note)
        for name in unknown_names():
            log.warning("%s is not a fleetlake setting (a typo?); it has no effect. `fleetlake run` refuses to "
                        "start with it", name)


# FLEETLAKE_* variables that are no setting of the daemon but are read by its tooling, on purpose.
TOOL_VARIABLES = frozenset({CONFIG_FILE_ENV, "FLEETLAKE_VENV", "FLEETLAKE_TEST_WORKERS", "FLEETLAKE_CRASH_TRIALS",
                            "FLEETLAKE_CONTAINER_CHECK", "FLEETLAKE_DEBUG"})


def unknown_names(environ: dict[str, str] | None = None) -> list[str]:
    """FLEETLAKE_* environment variables that name no setting: a misspelt one would be ignored silently."""
    env = os.environ if environ is None else environ
    known = {f"FLEETLAKE_{name.upper()}" for name in Settings.model_fields} | set(TOOL_VARIABLES)
    for tsp in Tsp:
        for key in TspSettings.model_fields:
            known |= {f"FLEETLAKE_{tsp.value.upper()}__{key.upper()}", f"FLEETLAKE_{tsp.value}_{key}".upper()}
    return sorted(n for n in env if n.startswith("FLEETLAKE_") and n not in known)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides), or a ConfigError naming the bad setting."""
    notes: list[str] = []
    reset = _NOTES.set(notes)
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # validated here, at run time
    except ValidationError as e:
        err = e.errors()[0]
        # A list's item index is no part of the setting's name.
        name = "FLEETLAKE_" + "__".join(str(p) for p in err["loc"] if not isinstance(p, int)).upper()
        # Never echo the offending value: it may be a secret.
        raise ConfigError(name, err["msg"]) from None
    finally:
        _NOTES.reset(reset)
    settings._deprecations = tuple(dict.fromkeys(notes))  # a source may be read twice
    return settings


class _DeprecatedTspKeys(TomlConfigSettingsSource):
    """The TOML file, with the flat per-TSP keys of earlier releases (`samsara_client_id = ...`) moved
    under their TSP's table (`[samsara] client_id = ...`), with a warning."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, toml_file=path)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = super()._read_files(files, deep_merge=deep_merge)
        for tsp in Tsp:
            for key in TspSettings.model_fields:
                old = f"{tsp}_{key}"
                if old in data:
                    _deprecated(f"{files}: `{old}` is deprecated: write `{key}` under `[{tsp}]`")
                    data.setdefault(tsp, {}).setdefault(key, data.pop(old))
        return data
