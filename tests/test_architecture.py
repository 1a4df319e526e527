"""The layering docs/architecture.md promises, checked on the source: who may import whom, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "geo", "connectors", "partitions", "ingest", "sandbox")
# package -> packages it must never import
FORBIDDEN = {
    "common": {"geo", "connectors", "partitions", "ingest", "sandbox"},
    "geo": {"connectors", "partitions", "ingest", "sandbox"},
    "connectors": {"ingest", "sandbox"},
    "partitions": {"connectors", "ingest", "sandbox"},
    "ingest": {"sandbox"},
}


# The layers inside ingest/, bottom up: each sub-package may import only those below it.
INGEST_LAYERS = (
    ("signals",),           # pure detectors and estimators on one vehicle's signals (numpy, geo)
    ("wiring",),            # settings and what they name: TSP endpoints, clock, keys, logs, metrics
    ("flows",),             # the flow contract and the built-in flows
    ("engine", "pull", "fleets"),  # the feature engine; a fleet's pull; on- and off-boarding: none
                                   # imports another (the pull never reaches into features)
    ("reads",),             # what is reported
    ("runtime",),           # the app, the queue, the pipeline, the daemon
    ("surfaces",),          # API, console, CLI
)


def _imports() -> dict[str, set[str]]:
    """module name -> project modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    for mod in modules:
        path = ROOT / (mod.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / mod.replace(".", "/") / "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            found.update(n for n in names if n in modules)
        graph[mod] = found - {mod}
    return graph


def test_layers_import_only_downwards() -> None:
    bad = [(m, i) for m, imps in _imports().items() for i in imps
           if i.split(".")[0] in FORBIDDEN.get(m.split(".")[0], set())]
    assert bad == []


def _ingest_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "ingest" or len(parts) < 2:
        return None
    for i, names in enumerate(INGEST_LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module}: a module of ingest/ outside its layers ({INGEST_LAYERS})")


def test_ingest_layers_import_only_downwards() -> None:
    """The pull never reaches up into features, the engine never into the runtime, nothing into the surfaces."""
    bad = []
    for m, imps in _imports().items():
        mine = _ingest_layer(m)
        if mine is None or m == "ingest":
            continue
        for i in imps:
            theirs = _ingest_layer(i)
            if theirs is None or i.split(".")[1] == m.split(".")[1]:
                continue
            if theirs >= mine:
                bad.append((m, i))
    assert bad == []


def test_the_pull_layer_never_calls_into_features() -> None:
    pull = {i for m, imps in _imports().items() if m.startswith("ingest.pull") for i in imps}
    assert not {i for i in pull if i.startswith(("ingest.engine", "ingest.flows", "ingest.runtime"))}


def test_there_is_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n] if n in path else [m, n])
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # A package's __init__ re-exporting its own modules is not a cycle between concepts.
    cycles = [c for c in cycles if not any(x.count(".") == 0 for x in c)]
    assert cycles == []


def test_the_sandbox_uses_only_the_cores_public_interfaces() -> None:
    allowed = {"common.months", "geo.distance", "geo.states", "partitions.schema",  # the canonical schema
               "connectors.redact", "ingest.pull.backfill", "ingest.engine.runs",
               "ingest.wiring.keys", "ingest.wiring.settings", "ingest.runtime.app", "ingest.runtime.pipeline",
               "ingest.surfaces.progress"}
    used = {i for m, imps in _imports().items() if m.startswith("sandbox") for i in imps
            if not i.startswith("sandbox")}
    assert used <= allowed, used - allowed
