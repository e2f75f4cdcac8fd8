"""The bench scripts' gradfx imports still resolve. No test runs them (they take minutes to hours), and their
imports sit inside functions, so a moved name broke bench/video.py only after its first 5 minutes of compute."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def gradfx_references(tree: ast.AST) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` for every name a script imports from gradfx, and every attribute it reads from a
    gradfx module it imported (``from gradfx.engine import models`` then ``models.get_extractor``)."""
    refs: list[tuple[int, str, str]] = []
    modules: dict[str, str] = {}  # local name -> the gradfx module it may be
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gradfx"):
            for alias in node.names:
                refs.append((node.lineno, node.module, alias.name))
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gradfx") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            refs.append((node.lineno, modules[node.value.id], node.attr))
    return refs


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_every_gradfx_name_a_bench_script_uses_exists(script: str) -> None:
    missing = []
    for line, module, name in gradfx_references(ast.parse((BENCH / script).read_text())):
        if not _is_module(module):  # an attribute of a name that is an object, not a module: not followed
            continue
        if not (hasattr(importlib.import_module(module), name) or _is_module(f"{module}.{name}")):
            missing.append(f"{script}:{line}: {module}.{name}")
    assert not missing, "stale gradfx names in bench/: " + ", ".join(missing)


def test_the_check_finds_a_moved_name() -> None:
    tree = ast.parse("def f():\n    from gradfx.engine import models\n    return models.get_extractor\n")
    assert (3, "gradfx.engine.models", "get_extractor") in gradfx_references(tree)
    assert not hasattr(importlib.import_module("gradfx.engine.models"), "get_extractor")
