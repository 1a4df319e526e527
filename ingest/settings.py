"""Settings: environment variables with the FLEETLAKE_ prefix, each default documented here.

Validated at start-up; an error names the setting. Secrets are SecretStr and only unwrapped at
the point of use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigError
from partitions.store import S3Options


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLAKE_", extra="forbid")

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
    flows_file: Path | None = Field(None, description="active feature flows, TOML (default config/flows.toml; "
                                                      "every flow's newest version when that file is absent)")
    flow_workers: int = Field(2, ge=1, le=64, description="processes computing feature windows in parallel")

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

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or (self.data_dir.resolve() / "store").as_uri()

    @property
    def resolved_manifest_path(self) -> Path:
        return (self.manifest_path or self.data_dir / "manifest.duckdb").resolve()

    @property
    def work_dir(self) -> Path:
        return (self.data_dir / "work").resolve()

    def s3_options(self) -> S3Options:
        secret = self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
        return S3Options(self.s3_endpoint_url, self.s3_region, self.s3_access_key_id, secret)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides), or a ConfigError naming the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        name = "FLEETLAKE_" + "_".join(str(p) for p in err["loc"]).upper()
        raise ConfigError(name, err["msg"]) from None
