"""The import graph of core/, plugin/ and ui/, read from the source (ast): no cycles, core never imports qgis."""

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "plugin", "ui")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The repository modules `path` imports, at module level or inside functions (a deferred import still
    closes a cycle as soon as both run). `from package import name` counts as the submodule when there is one."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            target = target.removeprefix("changen.")
            if target in modules:
                found.add(target)
                if isinstance(node, ast.ImportFrom):
                    break  # the most specific module named
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    paths = [path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py")]
    modules = {_module_name(path) for path in paths}
    return {_module_name(path): _imports(path, modules) for path in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == 1:
                return path[path.index(neighbour) :] + [neighbour]
            if neighbour not in state and (cycle := visit(neighbour)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_repository_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 60  # the walk found the packages
    assert find_cycle(graph) is None


def test_package_level_dependencies_have_no_cycle():
    """core's sub-packages form layers (e.g. io never imports detection); plugin and ui are not mutually
    dependent at import time: only the plugin's entry point opens the dock."""
    graph = import_graph()
    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        parts = module.split(".")
        source = ".".join(parts[:2]) if parts[0] == "core" and len(parts) > 2 else parts[0]
        for target in imported:
            target_parts = target.split(".")
            target = (
                ".".join(target_parts[:2])
                if target_parts[0] == "core" and len(target_parts) > 2
                else target_parts[0]
            )
            if target != source and module != "plugin.main":
                packages.setdefault(source, set()).add(target)
    assert find_cycle(packages) is None


@pytest.mark.parametrize("package", ["core"])
def test_core_never_imports_qgis(package):
    for path in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            assert not [name for name in names if name.split(".")[0] == "qgis"], path


def test_library_code_never_imports_the_command_line():
    """core.cli holds thin commands over the library: nothing else in core imports it (core.__main__ dispatches)."""
    graph = import_graph()
    library = [
        name for name in graph if name.startswith("core.") and not name.startswith(("core.cli", "core.__"))
    ]
    assert len(library) > 40
    offenders = {name: sorted(t for t in graph[name] if t.startswith("core.cli")) for name in library}
    assert not {name: targets for name, targets in offenders.items() if targets}
