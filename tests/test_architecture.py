"""The package's import graph has no cycles.

Every ``import``/``from`` statement counts, wherever it is: at module level, inside a function
(a lazy import is still a dependency), under ``if TYPE_CHECKING:``, and ``importlib.import_module``
with a literal name. A circle hides behind lazy imports until a move turns one into an
``ImportError`` at start-up, so the test fails naming every circle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kmsnap

PACKAGE = Path(kmsnap.__file__).parent


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node: ast.AST, package: str) -> list[str]:
    """Dotted names an import node may refer to (a module, or a name inside one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            anchor = parts[: len(parts) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        # ``from kmsnap import x``: x may be the module kmsnap.x, or a name in kmsnap.
        return [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def _imports(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Project modules ``path`` imports, anywhere in the file."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        for target in _targets(node, package):
            # The longest prefix that is a module: ``kmsnap.model.KINDS`` -> ``kmsnap.model``.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for every ``.py`` file under ``root``."""
    paths = sorted(root.rglob("*.py"))
    modules = {_module_name(p, root) for p in paths}
    graph = {_module_name(p, root): _imports(p, modules, root) for p in paths}
    # A package's __init__ importing its own children is not a circle: Python runs the
    # children from inside the package's import. A child importing its package still counts.
    return {node: {n for n in deps if not n.startswith(node + ".")} for node, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component with more than one module (Tarjan),
    each as a path ``[a, b, ..., a]`` that starts at its smallest name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(_circle(graph, component) for component in components)


def _circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest circle through the smallest module of a strongly connected component."""
    start = min(component)
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph.get(node, set()) & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    raise AssertionError(f"not a strongly connected component: {sorted(component)}")


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def _trees() -> dict[str, ast.AST]:
    return {_module_name(p): ast.parse(p.read_bytes(), filename=str(p))
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_git_runs_only_through_the_one_runner() -> None:
    """One environment policy: a command line starting with "git" is built only in gitrun."""
    found = sorted(
        f"{name}:{node.lineno}"
        for name, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts
        and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "git"
        and name != "kmsnap.git.runner"
    )
    assert not found, "git run outside kmsnap.git.runner: " + ", ".join(found)


def test_snapshot_files_are_parsed_only_by_the_one_parser() -> None:
    """The strict loader is reached only through kmsnap.snapshot.parse (one size limit)."""
    found = sorted(
        f"{name}:{node.lineno}"
        for name, tree in _trees().items()
        if name not in ("kmsnap.snapshot.parse", "kmsnap.snapshot.strict")
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr == "safe_load"
            and isinstance(node.value, ast.Name) and node.value.id in ("strict", "yamlsafe"))
        or (isinstance(node, ast.ImportFrom) and node.module == "kmsnap.snapshot.strict"
            and any(alias.name == "safe_load" for alias in node.names))
    )
    assert not found, "snapshot file parsed outside kmsnap.snapshot.parse: " + ", ".join(found)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import a\n")
    (pkg / "a.py").write_text("import pkg.b as b\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.sub import c\n"
        "def f():\n    from .sub.d import X\n"
    )
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("from .. import b\n")
    (pkg / "sub" / "f.py").write_text("from ..a import thing\n")
    (pkg / "sub" / "d.py").write_text(
        "import importlib\ndef g():\n    return importlib.import_module('pkg.e')\n"
    )
    (pkg / "e.py").write_text("import os\nfrom pkg.sub import d\n")
    graph = import_graph(pkg)
    assert graph == {
        "pkg": set(),  # its own children do not count
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub", "pkg.sub.c", "pkg.sub.d"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg", "pkg.b"},
        "pkg.sub.d": {"pkg.e"},
        "pkg.sub.f": {"pkg.a"},
        "pkg.e": {"pkg.sub", "pkg.sub.d"},
    }
    assert cycles(graph) == [["pkg.b", "pkg.sub.c", "pkg.b"], ["pkg.e", "pkg.sub.d", "pkg.e"]]


def test_cycle_finder_finds_every_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    two = {"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z", "x"}, "z": set()}
    assert cycles(two) == [["a", "b", "a"], ["x", "y", "x"]]
