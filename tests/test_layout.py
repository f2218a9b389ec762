"""The package reads in the order data flows: each stage imports only from itself and the stages below
it, no module imports another in a circle, and every module says in its first line what it owns."""

from __future__ import annotations

import ast
from pathlib import Path

import etl

PACKAGE = Path(etl.__file__).parent
# From the bottom up. A module may import its own stage and any stage listed before it.
STAGES = [
    ("etl.model",),
    ("etl.errors",),
    ("etl.config",),
    ("etl.api",),
    ("etl.walk",),
    ("etl.store",),
    ("etl.details",),
    ("etl.outputs",),
    ("etl.sync",),
    ("etl.tools",),
    ("etl.cli", "etl", "etl.__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith("etl.migrations"):
            found[name] = path
    return found


def _stage(module: str) -> int:
    for level, names in enumerate(STAGES):
        if module in names or any(module.startswith(name + ".") for name in names if name != "etl"):
            return level
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES")


def _imports(module: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The etl modules this one imports (`from etl.x import y` counts etl.x.y when that is a module)."""
    modules = _modules()
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:
            continue  # `if TYPE_CHECKING:` imports run for the type checker only
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "etl" and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "etl"}
    found.discard(module)
    return found


def test_every_module_belongs_to_a_stage_and_imports_none_above_it():
    wrong = []
    for module, path in _modules().items():
        for imported in _imports(module, path, top_level_only=False):
            if imported != "etl" and _stage(imported) > _stage(module):
                wrong.append(f"{module} imports {imported}, a later stage")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_in_a_circle():
    graph = {module: _imports(module, path, top_level_only=True) for module, path in _modules().items()}
    state: dict[str, str] = {}
    circles: list[str] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                circles.append(" -> ".join([*trail[trail.index(imported):], imported]))
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)


def test_every_module_opens_with_what_it_owns():
    silent = [module for module, path in _modules().items() if not (ast.get_docstring(ast.parse(path.read_text())) or "").strip()]
    assert not silent, f"modules without a docstring: {silent}"


def test_the_checks_see_a_wrong_import(tmp_path):
    """The stage check itself: a store module importing the sync would be caught."""
    path = tmp_path / "bad.py"
    path.write_text('"""A bad module."""\nfrom etl.sync import run_sync\n')
    imported = _imports("etl.store.bad", path, top_level_only=False)
    assert imported == {"etl.sync"} and _stage("etl.sync") > _stage("etl.store.bad")


def test_every_package_ships_in_the_wheel():
    """pyproject.toml lists the packages the wheel holds: a package left out installs as a missing module."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {module for module, path in _modules().items() if path.name == "__init__.py"}
    assert packages <= listed, f"not in pyproject.toml's packages: {sorted(packages - listed)}"
