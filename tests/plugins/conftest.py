"""Fixtures for plugin-host tests: fake *installed* distributions, made in a temporary folder on sys.path.

A ``*.dist-info`` folder with ``METADATA`` and ``entry_points.txt`` is all ``importlib.metadata`` needs to see
an installed distribution, so these tests exercise real entry-point discovery in milliseconds, without pip and
without depending on what CI installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def install(tmp_path, monkeypatch) -> Callable[..., Path]:
    """``install(dist, entry_points={name: "module[:attr]"}, modules={name: source}, version="1.0",
    path=None)`` makes a fake installed distribution. ``path`` adds an existing folder (e.g. an example
    package's source) to sys.path instead of writing modules."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, entry_points: Mapping[str, str], modules: Mapping[str, str] | None = None, *,
             version: str = "1.0", path: Path | None = None) -> Path:
        for name, source in (modules or {}).items():
            (site / f"{name}.py").write_text(source)
            created.append(name)
        if path is not None:
            monkeypatch.syspath_prepend(str(path))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(
            "[gradfx]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
        return info

    yield make
    for name in created:
        sys.modules.pop(name, None)


@pytest.fixture
def examples(install) -> None:
    """The two example packages under examples/ "installed": the working one and the broken one."""
    install("gradfx-example-plugin", {"posterize": "gradfx_example_plugin"}, version="0.1.0",
            path=EXAMPLES / "gradfx-example-plugin")
    install("gradfx-broken-plugin", {"broken": "gradfx_broken_plugin"}, version="0.0.1",
            path=EXAMPLES / "gradfx-broken-plugin")
    yield
    sys.modules.pop("gradfx_broken_plugin", None)


@pytest.fixture
def host(monkeypatch):
    """No process-wide registry during the test, so ``get_registry()`` (and so the CLI) discovers the
    installed plugins afresh, under whatever GRADFX_PLUGINS the test sets."""
    from gradfx.engine import registry as reg_mod

    monkeypatch.delenv(reg_mod.ENV_PLUGINS, raising=False)
    old = reg_mod.reset_registry(None)
    try:
        yield reg_mod.get_registry
    finally:
        reg_mod.reset_registry(old)
