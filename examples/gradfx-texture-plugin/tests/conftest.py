"""Register gradfx-texture in a fresh registry, as docs/plugins.md section 4 shows."""

from __future__ import annotations

import os

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture
def registry():
    import gradfx_texture_plugin

    from gradfx.engine import registry as reg_mod

    fresh = reg_mod.Registry(external=False)
    info = fresh.add_plugin(gradfx_texture_plugin, "texture-test")
    assert info.ok, info.errors
    old = reg_mod.reset_registry(fresh)
    try:
        yield fresh
    finally:
        reg_mod.reset_registry(old)
        fresh.remove_plugin("texture-test")
