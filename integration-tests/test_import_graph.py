"""No package has an import cycle, counting imports inside functions (lazy imports) too.

A lazy import hides a cycle from Python's import machinery but not from a reader: two modules
that need each other are one module in two files. Imports under ``if TYPE_CHECKING:`` are types
only and are not counted. The graph is read from the source with ``ast``, so the test needs no
installed package and sees every import, even one a test run never reaches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "async-executor": "async_executor",
    "coroutine-scheduler": "coroutine_scheduler",
    "perf-bench": "perf_bench",
}


def _modules(package: str) -> dict[str, Path]:
    src = ROOT / "packages" / package / "src"
    found: dict[str, Path] = {}
    for path in sorted((src / "vmkit" / PACKAGES[package]).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(source: str, modules: dict[str, Path]) -> set[str]:
    """The package modules ``source`` imports at run time, at any depth."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return {name for name in found if name in modules}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    graph = {
        name: _imports(path.read_text(encoding="utf-8"), modules) for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is how packages export; a submodule
    # importing its package's __init__ back would be the cycle, and stays counted.
    return {
        name: {m for m in imported if not m.startswith(name + ".")}
        for name, imported in graph.items()
    }


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph = _graph(package)
    assert len(graph) > 5  # the package's modules were found
    assert _cycles(graph) == []


def test_the_checker_finds_a_lazy_cycle() -> None:
    """The same check on a graph with a cycle through a lazy import reports it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from vmkit.x import y\nif TYPE_CHECKING:\n    import vmkit.z\n"
    modules = {"vmkit.x": Path("x"), "vmkit.x.y": Path("y"), "vmkit.z": Path("z")}
    assert _imports(source, modules) == {"vmkit.x.y"}
