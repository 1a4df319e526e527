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

# Fingerprints of earlier schemes and layouts of the same code, mapped to the fingerprint this tree
# gives it; runs carrying an old one are current (the planner re-keys them, never recomputes). Each
# map is frozen: a later change of the code gives a new fingerprint and recomputes.
#
# - The first scheme (raw source bytes keyed by module name, a3e9cc2) and the release after it
#   (abf1179, issue 22's main), whose flows reached common.errors through common.names (53f397b):
#   the code the flows reach did not change in behaviour across them.
# - Issue 24 (flows as packages): each active version's rules moved into its package
#   (`ingest/flows/<name>/`), out of the modules of the retired versions they imported (speed@3
#   imported speed@1 and speed@2's modules), and the contract (base.py) gained windows and
#   flow inputs. The rules are the same statements: the active flows' outputs on a demo store and
#   on tests/test_walk.py's months are byte-identical before and after (scripts/compare_lakes.py).
#   Retired versions have no entry: they are never planned.
# - The merges of issues 25-27 and ISO weeks (the same day): walk.py gained the signal flows'
#   shared per-vehicle groundwork, per-vehicle inputs only for datasets with a vehicle_id, the
#   read of a month still in parts and the week's stream; flow packages gained new versions. The
#   seven versions' outputs stay those of tests/golden/ (tests/test_walk.py), so their runs of the
#   release before and of issue 24's tree are current.
LEGACY: dict[tuple[str, int], dict[str, str]] = {
    ('data_quality', 1): {
        "3544b998e2c7520107c4ea8a159e6aa1": "722662dd0ce9bdc8c5998be2e1a8d9d6",
        "6281b60b154f5fc083ec0dcef89559a7": "722662dd0ce9bdc8c5998be2e1a8d9d6",
        "7175f4498109ddba25d0ccb24aa36bd2": "722662dd0ce9bdc8c5998be2e1a8d9d6",
        "8176f39e2528b4cd7d04239bd18bac54": "722662dd0ce9bdc8c5998be2e1a8d9d6",
        "ddb09b25030bc2df8bb91b87925746d9": "722662dd0ce9bdc8c5998be2e1a8d9d6"},
    ('distance', 2): {
        "14cda54ee6278d0a1779ee4da1e2f350": "7336de3f5167a7ee1d608ab77fa257de",
        "22ffa0736aa4e8402257c9fbe9bf52cd": "7336de3f5167a7ee1d608ab77fa257de",
        "4294104dcdefcf6745827e0dbc52be13": "7336de3f5167a7ee1d608ab77fa257de",
        "bb97f31e4a64f70eaf4895519b3402a7": "7336de3f5167a7ee1d608ab77fa257de"},
    ('trips', 3): {
        "988822e1a380c2e86efabc43533ffb7f": "2044cece926079500e927d8b6c1d1948",
        "b8c50d85264581a2d1e04d74d85134cd": "2044cece926079500e927d8b6c1d1948",
        "ccd967f78970fc4000342bf5d13d14db": "2044cece926079500e927d8b6c1d1948",
        "f9ea1d1ef4d68b4ff895050b1949ba0e": "2044cece926079500e927d8b6c1d1948"},
    ('speed', 3): {
        "529fe0da433da1ff1e98b87d86087430": "740d5f3f34c532956646b61a249e9c2c",
        "792ed3f47884090cf954226aa808b612": "740d5f3f34c532956646b61a249e9c2c",
        "8104c9547892f178db74e87a30d86bb2": "740d5f3f34c532956646b61a249e9c2c",
        "bde15eed8b9a091203070381d6ada5cc": "740d5f3f34c532956646b61a249e9c2c"},
    ('radius', 2): {
        "0b9e7bc71a1c07359b5696c851f4e46c": "04e0537805ab96263827145994adb5c7",
        "7b7994fe500ec189d4fbc87e33166f1e": "04e0537805ab96263827145994adb5c7",
        "a9cc3f3984de7060a8bc698848f8aa63": "04e0537805ab96263827145994adb5c7",
        "ac428adbc5dc03f0e39c0dabffc65e9a": "04e0537805ab96263827145994adb5c7"},
    ('fatigue', 3): {
        "123218a8eb6220e7471f640f97771c6e": "f385102c00902854d0e612900d38ac33",
        "5acbe5fd8c4886b50c8a1c0c45ad96eb": "f385102c00902854d0e612900d38ac33",
        "b14de8ffefba5d0768ad7bb599b71d2f": "f385102c00902854d0e612900d38ac33",
        "e44c0d55c6764140000db376dc07209b": "f385102c00902854d0e612900d38ac33"},
    ('harsh', 3): {
        "3e132e2d1b59f75d2c60a50f23f2a064": "56a8166045348c39508fcfdf260b6165",
        "6306260b7d05db730fe5ac57e4dbb640": "56a8166045348c39508fcfdf260b6165",
        "ca6c95819960e613242e4d211db4ad2c": "56a8166045348c39508fcfdf260b6165",
        "d55e47e09ac92ef7f2b1d6cd3998c761": "56a8166045348c39508fcfdf260b6165"},
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
