"""The flow contract (DESIGN.md, "Feature flows").

A flow is a module in `ingest/flows/` that defines `FLOW = Flow(...)`: a name, an integer
version, the raw datasets it reads, its output schema, and a pure function from one
(fleet, month) of committed inputs to one feature table.

Its code fingerprint covers the flow's module and every project module it imports, directly or
through others (found by reading their import statements), so editing a helper the flow calls
reruns the flow's windows, while editing unrelated code does not.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pyarrow as pa

from common import names

# Packages whose code can change a feature's value; third-party code is pinned by pyproject.
PROJECT_PACKAGES = ("ingest", "partitions", "geo", "common", "connectors")


@dataclass(frozen=True)
class FlowInput:
    fleet_id: str
    month: str  # YYYY-MM, UTC
    tables: dict[str, pa.Table]  # raw dataset name -> the committed rows of that month
    complete: bool  # False for the month that is still open


@dataclass(frozen=True)
class Flow:
    name: str
    version: int
    inputs: tuple[str, ...]
    schema: pa.Schema
    compute: Callable[[FlowInput], pa.Table] = field(compare=False)
    module: str = ""  # set from compute.__module__ when empty
    columns: tuple[str, ...] = ()  # input columns the flow reads (all when empty): less to decode and hold

    def __post_init__(self) -> None:
        names.flow_name(self.name)
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"flow {self.name}: version must be a positive integer")
        for d in self.inputs:
            names.dataset(d)
        if not self.module:
            object.__setattr__(self, "module", self.compute.__module__)

    @property
    def code_fingerprint(self) -> str:
        return code_fingerprint(self.module)

    @property
    def schema_fingerprint(self) -> str:
        return hashlib.blake2b(str(self.schema).encode(), digest_size=12).hexdigest()


def code_fingerprint(module: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(_closure(module)):
        digest.update(name.encode() + b"\0" + _source(name) + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _source(module: str) -> bytes:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"cannot find the source of module {module}")
    return Path(spec.origin).read_bytes()


def _closure(root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(_project_imports(mod))
    return seen


@lru_cache(maxsize=None)
def _project_imports(module: str) -> tuple[str, ...]:
    tree = ast.parse(_source(module))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for c in candidates:
            if c.split(".")[0] in PROJECT_PACKAGES:
                spec = _spec(c)
                if spec and spec.origin and spec.origin.endswith(".py"):
                    found.add(c)
    return tuple(sorted(found))


def _spec(name: str):  # type: ignore[no-untyped-def]
    """The module spec, or None when `name` is a class or function imported from a module."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
