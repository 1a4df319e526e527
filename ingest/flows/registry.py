"""Which flows exist, and which versions are active (config/flows.toml).

Every module in `ingest/flows/` that defines `FLOW` (or a tuple `FLOWS`, to keep an older version
running next to a newer one) is available. The active list names `<flow>@<version>` entries;
each active version writes under its own `features/<flow>/v<version>/` prefix.
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import ingest.flows as flows_pkg
from common.errors import ConfigError
from ingest.flows.base import Flow

SETTING = "FLEETLAKE_FLOWS_FILE"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "config" / "flows.toml"


def available() -> dict[tuple[str, int], Flow]:
    found: dict[tuple[str, int], Flow] = {}
    for info in sorted(pkgutil.iter_modules(flows_pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{flows_pkg.__name__}.{info.name}")
        for f in (*getattr(mod, "FLOWS", ()), *([mod.FLOW] if hasattr(mod, "FLOW") else [])):
            if isinstance(f, Flow):
                found[(f.name, f.version)] = f
    return found


def newest() -> list[Flow]:
    best: dict[str, Flow] = {}
    for (name, _version), f in sorted(available().items()):
        best[name] = f
    return list(best.values())


def resolve(entries: list[str]) -> list[Flow]:
    """Flows for entries like "distance@1"; an unknown or malformed entry is a ConfigError."""
    have = available()
    out: list[Flow] = []
    for e in entries:
        name, sep, version = str(e).partition("@")
        if not sep or not version.isdigit():
            raise ConfigError(SETTING, f"flow entry {e!r} must look like <flow>@<version>, e.g. distance@1")
        f = have.get((name, int(version)))
        if f is None:
            known = ", ".join(f"{n}@{v}" for n, v in sorted(have))
            raise ConfigError(SETTING, f"no flow {e!r}; available: {known}")
        if f in out:
            raise ConfigError(SETTING, f"flow {e!r} is listed twice")
        out.append(f)
    return out


def active_flows(path: Path | None = None) -> list[Flow]:
    """The active flows from `path` (default config/flows.toml); every newest version if there is no file."""
    explicit = path is not None
    path = path or DEFAULT_FILE
    if not path.exists():
        if explicit:
            raise ConfigError(SETTING, f"{path} does not exist")
        return newest()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(SETTING, f"{path} is not readable TOML: {e}") from None
    entries = data.get("active")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(SETTING, f"{path} must set `active = [\"<flow>@<version>\", ...]`")
    return resolve(entries)
