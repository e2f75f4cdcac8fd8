"""The plugin-testing pattern: register this plugin in a fresh gradfx registry, remove it afterwards."""

from __future__ import annotations

import os

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture
def registry():
    """A registry with the built-ins and this plugin only (no other installed plugins), installed as the
    process-wide one so the CLI and ``gradfx.engine.run`` see it too."""
    import gradfx_example_plugin

    from gradfx.engine import registry as reg_mod

    fresh = reg_mod.Registry(external=False)
    info = fresh.add_plugin(gradfx_example_plugin, "posterize-test")
    assert info.ok, info.errors
    old = reg_mod.reset_registry(fresh)
    try:
        yield fresh
    finally:
        reg_mod.reset_registry(old)
        fresh.remove_plugin("posterize-test")
