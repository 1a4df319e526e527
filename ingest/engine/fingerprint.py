"""Code fingerprints of feature flows: what a flow computes with, not how its files are laid out.

A flow's code fingerprint is a digest of the *normalised code* of every project module the flow
reaches through its imports:

- Normalised code is the module's AST without docstrings (comments never reach the AST), without
  type hints and the imports that serve them (typing, collections.abc, __future__), with runs of imports in sorted order and with the dotted names of project modules
  erased from import statements. Reformatting, comments, typing fixes, import sorting, and
  moving or renaming a module change nothing; a change to what the code does changes the
  digest of the module it is in, and so the fingerprint of every flow that reaches it.
- Project modules are found from the import graph, starting at the flow's module, without a
  hand-kept package list: a module is ours when its top-level package belongs to the same
  installed distribution as the flow (`importlib.metadata.packages_distributions`), or, when
  run from a source tree that is not installed, when it lives under the flow's source root.
  Third-party code is pinned by pyproject.toml and not hashed.
- The fingerprint combines the module digests as a sorted multiset, so it does not depend on
  module names either. The digests by module name are kept (`closure_digests`) to say what
  changed.

Limits, on purpose: `import a.b` followed by `a.b.f()` in code keeps the dotted name in the
attribute chain, so such a module's move is seen as a change; project code uses `from a.b import f`.

Fingerprints of earlier schemes are re-keyed by the planner (see `LEGACY`) so that switching
schemes recomputes nothing.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib.machinery import ModuleSpec
from importlib.metadata import packages_distributions
from pathlib import Path

# Fingerprints of the first scheme (raw source bytes keyed by module name), as the release
# before this one (a3e9cc2) produced them, mapped to this scheme's fingerprint of the same code
# as this release's restructure left it (1cc05d5). Between the two, the code the v1 flows reach
# did not change in behaviour (it was moved, reformatted and re-documented; recomputing every
# window of a demo store gave byte-identical outputs), so runs carrying an old fingerprint are
# current. The map is frozen: a later change of the code gives a new fingerprint and recomputes.
#
# The active versions' entries below (abf1179, the last release, and the main of issue 22 that
# followed it) map to their fingerprints once the error tree's root moved to common.base_errors:
# the flows reached common.errors through common.names, so each new error class (DiskFull,
# UnknownFleet, ...) changed every flow's fingerprint with none of their code. Every other
# module they reach has the same digest in all three.
LEGACY: dict[tuple[str, int], dict[str, str]] = {
    ("distance", 1): {"4bf1948fd9bb286b59e20222c819ed0b": "15da79223349621348e0b80c3323faf1"},
    ("fatigue", 1): {"a33692a33afe5646b8a67be38631947d": "0aee7fb9ebde258b937b2e34e15af92e"},
    ("harsh", 1): {"ecb01a61168cbd3a7e520b4fc73799f1": "d3f18a088d610fb439e9c934f07eb729"},
    ("radius", 1): {"0c7bcf346820591818717b25dcf462b1": "f76f1ea2b3bae30947df1842d7ffcfa7"},
    ("speed", 1): {"bfc3df514fa05ad45dfefcee348f9936": "2f5624a0fc31304f4d671967806291b5"},
    ("trips", 1): {"f1a58d82aa7f9364fca72ebeac47cfe2": "99a67f4ad1fb7ddc2600c4d814e6bbcc"},
    ("data_quality", 1): {"6281b60b154f5fc083ec0dcef89559a7": "aaecb6e4b2fce77a605d1c4314504b81",
                    "3544b998e2c7520107c4ea8a159e6aa1": "ddb09b25030bc2df8bb91b87925746d9",
                      "7175f4498109ddba25d0ccb24aa36bd2": "ddb09b25030bc2df8bb91b87925746d9"},
    ("distance", 2): {"bb97f31e4a64f70eaf4895519b3402a7": "14cda54ee6278d0a1779ee4da1e2f350",
                  "4294104dcdefcf6745827e0dbc52be13": "14cda54ee6278d0a1779ee4da1e2f350"},
    ("trips", 3): {"988822e1a380c2e86efabc43533ffb7f": "ccd967f78970fc4000342bf5d13d14db",
               "f9ea1d1ef4d68b4ff895050b1949ba0e": "ccd967f78970fc4000342bf5d13d14db"},
    ("speed", 3): {"bde15eed8b9a091203070381d6ada5cc": "529fe0da433da1ff1e98b87d86087430",
               "792ed3f47884090cf954226aa808b612": "529fe0da433da1ff1e98b87d86087430"},
    ("radius", 2): {"0b9e7bc71a1c07359b5696c851f4e46c": "a9cc3f3984de7060a8bc698848f8aa63",
                "ac428adbc5dc03f0e39c0dabffc65e9a": "a9cc3f3984de7060a8bc698848f8aa63"},
    ("fatigue", 3): {"123218a8eb6220e7471f640f97771c6e": "e44c0d55c6764140000db376dc07209b",
                 "b14de8ffefba5d0768ad7bb599b71d2f": "e44c0d55c6764140000db376dc07209b"},
    ("harsh", 3): {"ca6c95819960e613242e4d211db4ad2c": "3e132e2d1b59f75d2c60a50f23f2a064",
               "6306260b7d05db730fe5ac57e4dbb640": "3e132e2d1b59f75d2c60a50f23f2a064"},
}


def code_fingerprint(module: str) -> str:
    """The flow module's code fingerprint (32 hex digits)."""
    digest = hashlib.blake2b(digest_size=16)
    for d in sorted(closure_digests(module).values()):
        digest.update(d.encode())
    return digest.hexdigest()


def closure_digests(module: str) -> dict[str, str]:
    """The normalised-code digest of every project module `module` reaches, by module name."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        digest, imports = _analyse(name)
        seen[name] = digest
        todo.extend(imports)
    return seen


@lru_cache(maxsize=None)
def _analyse(module: str) -> tuple[str, tuple[str, ...]]:
    """(digest of the normalised code, project modules it imports) of one module."""
    spec = _source_spec(module)
    if spec is None:
        raise ValueError(f"cannot find the source of module {module}")
    tree = ast.parse(Path(str(spec.origin)).read_bytes())
    imports = sorted(_project_imports(tree, module, _is_package(spec)))
    normalised = _Normaliser(set(imports)).visit(tree)
    text = ast.dump(normalised, annotate_fields=False, include_attributes=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest(), tuple(imports)


def _is_package(spec: ModuleSpec) -> bool:
    return spec.submodule_search_locations is not None


def _project_imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            if base is None:
                continue
            candidates = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found.update(c for c in candidates if _is_project_module(c, module))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(parts):
        return None
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])]) or None


_TYPING_ONLY = {"typing", "__future__", "collections.abc"}


class _Normaliser(ast.NodeTransformer):
    """Drops docstrings and erases project module names from import statements."""

    def __init__(self, project: set[str]) -> None:
        self.project = project

    def _strip_docstring(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]  # every such node has a body
        self.generic_visit(node)
        return node

    visit_ClassDef = _strip_docstring

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        # Type hints do not run (`from __future__ import annotations`): a typing fix is no change.
        node.returns = None
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
                    *([a.kwarg] if a.kwarg else [])]:
            arg.annotation = None
        return self._strip_docstring(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.annotation = ast.Constant(None)  # kept as a node: a dataclass field is still a field
        return self.generic_visit(node)

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._strip_docstring(node)
        # Import sorters reorder runs of imports; the order of imports does not change what code does.
        body: list[ast.stmt] = []
        run: list[ast.stmt] = []
        for stmt in [*node.body, None]:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                run.append(stmt)
                continue
            body.extend(sorted(run, key=ast.dump))
            run = []
            if stmt is not None:
                body.append(stmt)
        node.body = body
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        if node.module in _TYPING_ONLY:
            return None  # names for type hints; where one is used at run time, the use is in the AST
        names = sorted(node.names, key=lambda a: (a.name, a.asname or ""))
        if node.level or (node.module and node.module.split(".")[0] in {p.split(".")[0] for p in self.project}):
            return ast.ImportFrom(module="<project>", names=names, level=0)
        return ast.ImportFrom(module=node.module, names=names, level=0)

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        if all(a.name in _TYPING_ONLY for a in node.names):
            return None
        names = [ast.alias(name="<project>" if a.name in self.project else a.name, asname=a.asname)
                 for a in node.names]
        return ast.Import(names=sorted(names, key=lambda a: (a.name, a.asname or "")))


@lru_cache(maxsize=None)
def _source_spec(name: str) -> ModuleSpec | None:
    """The spec of a module with Python source, or None (a class or function name, or no source)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec


def _is_project_module(name: str, root_module: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or _source_spec(name) is None:
        return False
    dists = _distributions()
    own = dists.get(root_module.split(".")[0])
    if own:
        return bool(set(dists.get(top, ())) & set(own))
    # Not installed (a bare source tree on sys.path): ours when it lives beside the flow's package.
    return _source_root(top) == _source_root(root_module.split(".")[0])


@lru_cache(maxsize=None)
def _distributions() -> Mapping[str, list[str]]:
    """packages_distributions() once: it scans every installed distribution's metadata, and was
    called for each import of each analysed module (minutes for a first plan on a loaded machine)."""
    return packages_distributions()


@lru_cache(maxsize=None)
def _source_root(top: str) -> Path | None:
    spec = _source_spec(top)
    if spec is None:
        return None
    path = Path(str(spec.origin)).resolve()
    root = path.parent.parent if _is_package(spec) else path.parent
    return None if "site-packages" in root.parts or "dist-packages" in root.parts else root


def forget() -> None:
    """Drop cached analyses (tests change source files under a running process; the daemon does not)."""
    _analyse.cache_clear()
    _source_spec.cache_clear()
    _source_root.cache_clear()
    _distributions.cache_clear()
