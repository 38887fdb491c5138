"""The package's shape: imports inside ``workbench/`` point one way (no cycles, function-level imports
included), and modules stay small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
MAX_LINES = 420  # about 400; a longer module says why at its top
LONGER_BECAUSE = "longer than 400 lines because"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom | ast.Import) -> set[str]:
    """The workbench modules an import statement loads (a package's __init__ for names it defines)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    if node.level:
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    if not target.startswith("workbench"):
        return set()
    found = set()
    for alias in node.names:
        submodule = f"{target}.{alias.name}"
        found.add(submodule if submodule in MODULES else target)
    return {name for name in found if name in MODULES}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in ast.walk(tree):  # every import, at module level or inside functions
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= resolve(name, node)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def is_package_init(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def test_finder_sees_function_level_imports_and_cycles():
    assert "workbench.masks" in import_graph()["workbench.pruner"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_inside_the_package():
    graph = import_graph()
    # A package's __init__ only gathers its submodules for users; submodules never import it back.
    for name, targets in graph.items():
        inits = {t for t in targets if is_package_init(t) and name.startswith(t + ".")}
        assert not inits, f"{name} imports its own package's __init__ {inits}: import the submodule instead"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small_or_say_why(name):
    text = MODULES[name].read_text()
    lines = text.count("\n")
    if lines > MAX_LINES:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert LONGER_BECAUSE in docstring, f"{name} has {lines} lines; split it or say why at its top"


def layer_of(name: str) -> int:
    """library 0 → viz 1 → widgets 2 → cli 3 (and the package's __init__, which gathers everything)."""
    if name.startswith("workbench.viz"):
        return 1
    if name.startswith("workbench.widgets"):
        return 2
    if name in ("workbench.cli", "workbench"):
        return 3
    return 0


def module_level_imports(name: str) -> set[str]:
    tree = ast.parse(MODULES[name].read_text())
    found = set()
    for node in tree.body:  # top-level statements only; a .plot() method may import its figure lazily
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= resolve(name, node)
    return found


def test_imports_point_from_the_library_up_to_views_and_the_cli():
    for name in MODULES:
        for target in module_level_imports(name):
            assert layer_of(target) <= layer_of(name), f"{name} (layer {layer_of(name)}) imports {target}"
    for name, targets in import_graph().items():
        if layer_of(name) == 0:
            lazy = {t for t in targets if layer_of(t) > 1}
            assert not lazy, f"library module {name} imports widgets or the CLI: {lazy}"
