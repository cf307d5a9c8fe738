"""The codebase stays small-moduled and acyclic (the layer contracts themselves run in `make lint`)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import grimp

from tests.conftest import PROJECT_ROOT

PACKAGES = ("flows", "tasks", "monitoring", "deployments")
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        path.relative_to(PROJECT_ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
    }
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules() -> None:
    """Deferred imports inside functions count too: grimp reads every import statement."""
    graph = grimp.build_graph(*PACKAGES)
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert _cycles(edges) == []


def sub_package(module: str) -> str:
    """`tasks.core.settings` -> `tasks.core`; the flows are one package (their top layer)."""
    parts = module.split(".")
    return "flows" if parts[0] == "flows" else ".".join(parts[:2])


def test_no_import_cycle_between_sub_packages() -> None:
    """No two sub-packages import each other, directly or through others."""
    graph = grimp.build_graph(*PACKAGES)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = sub_package(module)
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(module):
            target = sub_package(imported)
            if target != source:
                edges[source].add(target)
                edges.setdefault(target, set())
    assert _cycles(edges) == []


def test_every_module_sits_in_a_layered_sub_package() -> None:
    """Code lives in sub-packages the layers contract names; a new module needs no contract edit."""
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [layers] = [
        c["layers"]
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and "containers" not in c
    ]
    placed = {name.strip() for layer in layers for name in re.split(r"[:|]", layer)}
    assert all(name.count(".") <= 1 for name in placed), "contracts name packages, not modules"
    graph = grimp.build_graph(*PACKAGES)
    roots = {"tasks", "monitoring", "deployments"}
    unplaced = [module for module in sorted(graph.modules - roots) if sub_package(module) not in placed]
    assert unplaced == []


# Where a model family's estimator may be built: only in its own module of the families folder.
FAMILIES_DIR = PROJECT_ROOT / "tasks" / "learning" / "families"
ESTIMATOR_MODULES = (
    "lightgbm",
    "xgboost",
    "catboost",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.tree",
    "sklearn.neural_network",
)
# Models that combine fitted family models (the ensemble candidate) declare no family.
COMBINERS = frozenset({"VotingRegressor", "VotingClassifier"})


def family_declarations(path: Path) -> list[str]:
    """What in a module declares a family: an estimator library import or a `ModelFamily(...)` call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            combiners_only = all(alias.name in COMBINERS for alias in node.names)
            names = [] if combiners_only else [node.module]
        found += [
            f"imports {name}"
            for name in names
            if any(name == module or name.startswith(f"{module}.") for module in ESTIMATOR_MODULES)
        ]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ModelFamily":
            found.append("calls ModelFamily")
    return found


def test_family_check_finds_a_family_declared_elsewhere(tmp_path: Path) -> None:
    module = tmp_path / "candidates.py"
    module.write_text(
        "from sklearn.ensemble import VotingRegressor\n"
        "from sklearn.ensemble import ExtraTreesRegressor, VotingRegressor\n"
        "from xgboost import XGBRegressor\n"
        "FAMILY = ModelFamily(name='xgboost')\n"
    )
    assert family_declarations(module) == ["imports sklearn.ensemble", "imports xgboost", "calls ModelFamily"]


def test_model_families_are_declared_only_in_their_folder() -> None:
    """Training code outside `tasks/learning/families/` builds no estimator of its own."""
    outside = {
        path.relative_to(PROJECT_ROOT).as_posix(): found
        for package in ("tasks", "flows")
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if FAMILIES_DIR not in path.parents and (found := family_declarations(path))
    }
    assert outside == {}


def test_every_family_module_declares_its_family() -> None:
    from tasks.learning.families import all_families

    modules = sorted(path.stem for path in FAMILIES_DIR.glob("*.py") if path.stem != "__init__")
    assert sorted(all_families()) == modules
