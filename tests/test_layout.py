"""The code's shape, kept true by a test: no Python file in engine/, plugins/ or tui/ over 500 lines; the
engine's import graph, counting imports made inside functions (but not those only for type checkers), has no
cycle; the engine imports nothing from plugins/ or tui/; plugins/ never import the TUI. Read from the source,
nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"engine": "gradfx.engine", "plugins": "gradfx.plugins", "tui": "gradfx.tui"}
MAX_LINES = 500


def _modules(folder: str) -> dict[str, Path]:
    """Dotted module name -> file, for every Python file under ``folder`` (a package's ``__init__`` is the
    package's own name)."""
    out = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = [FOLDERS[folder], *path.relative_to(ROOT / folder).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports, at module level or inside functions, but not
    under ``if TYPE_CHECKING:``; ``from package import module`` counts as importing that module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a name from a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph(folders: tuple[str, ...]) -> dict[str, set[str]]:
    modules = {name: path for folder in folders for name, path in _modules(folder).items()}
    known = set(modules) | set(FOLDERS.values())
    return {name: imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_no_python_file_is_over_500_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these into modules with one job each: {long}"


def test_the_engine_has_no_import_cycle_counting_imports_inside_functions():
    assert _cycles(_graph(("engine",))) == []


def test_the_engine_imports_nothing_from_plugins_or_the_tui_and_plugins_nothing_from_the_tui():
    graph = _graph(("engine", "plugins", "tui"))
    wrong = {(a, b) for a, targets in graph.items() for b in targets
             if (a.startswith("gradfx.engine") and not b.startswith("gradfx.engine"))
             or (a.startswith("gradfx.plugins") and b.startswith("gradfx.tui"))}
    assert not wrong


def test_the_cycle_finder_finds_a_cycle_made_by_an_import_inside_a_function(tmp_path):
    """The checks above would pass vacuously if the reader missed imports: it finds one made in a function."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from . import b\n")
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a as typed\n"
                 "def f():\n    from .a import thing\n")
    known = {"p.a", "p.b"}
    graph = {"p.a": imports("p.a", a, known), "p.b": imports("p.b", b, known)}
    assert graph == {"p.a": {"p.b"}, "p.b": {"p.a"}} and _cycles(graph) == [["p.a", "p.b"]]
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    assert _cycles({"p.a": {"p.b"}, "p.b": imports("p.b", b, known)}) == []
