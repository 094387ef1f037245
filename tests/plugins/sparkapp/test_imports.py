"""How sparkapp's modules import each other: no cycle.

The check is static: every ``import`` in every module, the ones inside functions too (a lazy import
still closes a circle when it runs), but not those under ``if TYPE_CHECKING:``, which never run.
(That Airflow's plugin manager runs none of them is ``tests/plugins/test_plugin_loading.py``.)
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import pytest

from tests.conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

PLUGINS = PROJECT_ROOT / "plugins"
SPARKAPP = PLUGINS / "sparkapp"


def module_name(path: Path, root: Path = PLUGINS) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names a module imports when it runs (``from a import b`` gives ``a.b`` and ``a``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rsplit(".", 1)[0]
                package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{package}.{base}" if base else package
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path, plugins: Path = PLUGINS) -> dict[str, set[str]]:
    """Each module of the package at ``root`` and the modules of that package it imports."""
    paths = {module_name(p, plugins): p for p in sorted(root.rglob("*.py"))}
    return {
        module: {name for name in imported_names(ast.parse(path.read_text()), module,
                                                 path.name == "__init__.py")
                 if name in paths and name != module}
        for module, path in paths.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (first module repeated at the end), or None."""
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            cycle = walk(imported, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = walk(module, [])
        if cycle:
            return cycle
    return None


def test_no_sparkapp_module_imports_itself_back():
    graph = import_graph(SPARKAPP)
    assert {"sparkapp.client", "sparkapp.backends", "sparkapp.hooks.kubernetes", "sparkapp.hooks.local",
            "sparkapp.application.rendering", "sparkapp.triggers.spark_application"} <= set(graph)
    assert find_cycle(graph) is None


def test_the_client_is_the_protocol_only_and_backends_choose():
    graph = import_graph(SPARKAPP)
    assert graph["sparkapp.client"] == set()
    assert graph["sparkapp.backends"] == {"sparkapp.hooks.kubernetes", "sparkapp.hooks.local"}
    # The waiting policy is the states' (the sensor takes only the trigger's class from its module).
    assert "sparkapp.states" in graph["sparkapp.sensors.spark_application"]
    assert "sparkapp.states" in graph["sparkapp.triggers.spark_application"]
    trigger_module = (SPARKAPP / "triggers" / "spark_application.py").read_text()
    assert "def waiting_verdict" not in trigger_module and "def waiting_verdict" in (
        SPARKAPP / "states.py").read_text()


@pytest.mark.parametrize(("sources", "cycle"), [
    # The circle of the toolkit before backends.py: a lazy import in the client's factory.
    ({"client.py": "def get_client():\n    from pkg.local import Local\n",
      "local.py": "from pkg.client import ApplicationNotFound\n"},
     ["pkg.client", "pkg.local", "pkg.client"]),
    ({"a.py": "import pkg.b\n", "b.py": "from pkg import c\n", "c.py": "from . import a\n"},
     ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]),
    ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
      "b.py": "from pkg.a import A\n"}, None),
])
def test_the_check_finds_a_cycle_also_through_lazy_and_relative_imports(tmp_path, sources, cycle):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in sources.items():
        (package / name).write_text(text)
    assert find_cycle(import_graph(package, tmp_path)) == cycle
