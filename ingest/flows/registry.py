"""Which flows exist, and which versions are active (config/flows.toml).

A flow is a package that declares `VERSIONS` (one `Flow` per version it still runs): every
package in `ingest/flows/` (built-ins), and every installed package registered in the entry point
group `fleetlake.flows` (plug-ins: `idle_share = "idle_share"` in its pyproject's
`[project.entry-points."fleetlake.flows"]`). Both are activated the same way: the active list
names `<flow>@<version>` entries; each active version writes under its own
`features/<flow>/v<version>/` prefix. A plug-in that cannot be loaded, or that declares a flow a
built-in or another plug-in already has, is a ConfigError naming it, at start.
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import ingest.flows as flows_pkg
from common.errors import ConfigError
from ingest.flows.base import Flow
from ingest.flows.graph import FlowGraphError, ordered

SETTING = "FLEETLAKE_FLOWS_FILE"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "config" / "flows.toml"
ENTRY_POINTS = "fleetlake.flows"


def _versions(obj: object, where: str) -> list[Flow]:
    """The Flows a package (its VERSIONS), a Flow or a tuple of Flows stands for."""
    found = getattr(obj, "VERSIONS", obj) if isinstance(obj, ModuleType) else obj
    items = [found] if isinstance(found, Flow) else list(found) if isinstance(found, (tuple, list)) else None
    if items is None or not all(isinstance(f, Flow) for f in items):
        raise ConfigError(SETTING, f"{where} declares no flows: a flow package sets VERSIONS = (Flow(...), ...)")
    return items


def builtin() -> dict[tuple[str, int], Flow]:
    found: dict[tuple[str, int], Flow] = {}
    for info in sorted(pkgutil.iter_modules(flows_pkg.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue  # shared groundwork (track, motion, walk, rollup), the contract and this registry
        mod = importlib.import_module(f"{flows_pkg.__name__}.{info.name}")
        for f in _versions(mod, mod.__name__):
            found[(f.name, f.version)] = f
    return found


def plugins() -> dict[tuple[str, int], Flow]:
    """Flows of installed packages (entry point group fleetlake.flows)."""
    found: dict[tuple[str, int], Flow] = {}
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        where = f"plug-in {ep.name!r} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plug-in is named, not a traceback
            raise ConfigError(SETTING, f"{where} cannot be loaded: {type(e).__name__}: {e}") from None
        for f in _versions(obj, where):
            if (f.name, f.version) in found:
                raise ConfigError(SETTING, f"{where} declares {f.key}, which another plug-in declares too")
            found[(f.name, f.version)] = f
    return found


def available() -> dict[tuple[str, int], Flow]:
    found = builtin()
    for key, f in plugins().items():
        if key in found:
            raise ConfigError(SETTING, f"plug-in flow {f.key} ({f.module}) has the name and version of a built-in")
        found[key] = f
    return found


def newest() -> list[Flow]:
    best: dict[str, Flow] = {}
    for (name, _version), f in sorted(builtin().items()):
        best[name] = f
    return list(best.values())


def resolve(entries: list[str]) -> list[Flow]:
    """Flows for entries like "distance@2"; an unknown or malformed entry is a ConfigError."""
    have = available()
    have_weekly = {f.key for f in have.values() if f.window == "week"}
    out: list[Flow] = []
    for e in entries:
        name, sep, version = str(e).partition("@")
        if not sep or not version.isdigit():
            raise ConfigError(SETTING, f"flow entry {e!r} must look like <flow>@<version>, e.g. distance@2")
        f = have.get((name, int(version)))
        if f is None:
            known = ", ".join(f"{n}@{v}" for n, v in sorted(have))
            raise ConfigError(SETTING, f"no flow {e!r}; available: {known}")
        if f in out:
            raise ConfigError(SETTING, f"flow {e!r} is listed twice")
        if f.window == "week" and f.upstream:  # weeks are planned from raw partitions (ingest/engine/weeks.py)
            raise ConfigError(SETTING, f"flow {e!r}: an ISO week window reads raw datasets only; its inputs "
                                       f"{', '.join(f.upstream)} are other flows' outputs, whose weeks cannot be planned")
        weekly = [u for u in f.upstream if u in have_weekly]
        if weekly:
            raise ConfigError(SETTING, f"flow {e!r} reads {', '.join(weekly)}, an ISO week flow: flows on flows read "
                                       "month windows, so its inputs cannot be planned")
        if f.window in ("quote", "book") and not f.upstream:
            raise ConfigError(SETTING, f"flow {e!r}: a {f.window} window reads other flows' outputs, not raw data")
        out.append(f)
    try:
        return ordered(out)  # a flow after the flows it reads; a cycle is refused here, at start
    except FlowGraphError as e:
        raise ConfigError(SETTING, str(e)) from None


def active_flows(path: Path | None = None) -> list[Flow]:
    """The active flows from `path` (default config/flows.toml); every newest built-in if there is no file."""
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
