"""Shared test helpers: a tiny VGG16 effect, fast on seeded random weights, and a plugin that registers effects.

``tests/`` is on ``sys.path`` while pytest runs (its ``conftest.py`` puts it there), so test modules write
``from helpers import TinyDream, TinyPlugin``; a child process adds :data:`HERE` to its path first (see
``tests/engine/test_reliability.py``). Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradfx.engine import Choice, Effect, Int, Str, hookimpl

#: this folder, for child processes that import the helpers
HERE = Path(__file__).resolve().parent


class TinyDream(Effect):
    """Raise one channel of a VGG16 layer for a few steps: SGD on the std-normalised gradient, or Adam with
    state to checkpoint; ``octaves`` > 1 adds coarse-to-fine stages with lost-detail re-injection."""

    name = "tiny-dream"
    summary = "raise one VGG16 channel for a few steps"
    params = (
        Int("steps", 3, "steps per octave", min=1, max=1000),
        Str("layer", "block1_conv2", "VGG16 layer"),
        Int("channel", 5, "channel of the layer", min=0, max=63),
        Int("octaves", 1, "coarse-to-fine stages, 1.3x apart", min=1, max=4),
        Choice("optimizer", "sgd", ("sgd", "adam"), "sgd (lr 0.02, std-normalised) or adam (lr 0.01)"),
    )
    model = "vgg16"

    def build(self, ctx: Any, params: Any) -> Any:
        from gradfx.engine import Problem
        from gradfx.engine.objectives import channel

        adam = params["optimizer"] == "adam"
        return Problem(channel(params["layer"], params["channel"]), init=ctx.input.rgb, maximize=True,
                       steps=params["steps"], optimizer=params["optimizer"], lr=0.01 if adam else 0.02,
                       normalize=None if adam else "std", octaves=params["octaves"], octave_scale=1.3,
                       reinject_detail=params["octaves"] > 1, label="octave")


class TinyPlugin:
    """A plugin whose effects hook registers ``effects`` (default: one :class:`TinyDream`)."""

    def __init__(self, *effects: Effect) -> None:
        self.effects = effects or (TinyDream(),)

    @hookimpl
    def gradfx_register_effects(self, register: Any) -> None:
        for effect in self.effects:
            register(effect)


def make_video(path, frames: int = 12, size: int = 64, fps: int | Fraction = 12, audio: bool = True) -> list:
    """Write a short H.264 clip (PyAV) whose frames differ (a moving bar), with a sine-tone AAC track if
    ``audio``; returns the uint8 frames encoded."""
    import av

    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "0"}
    sound = out.add_stream("aac", rate=16000) if audio else None
    made = []
    for i in range(frames):
        img = np.full((size, size, 3), 30, np.uint8)
        img[:, : (i * 5) % size + 4] = 220
        img[..., 1] = i * 20
        made.append(img)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if sound is not None:
        t = np.arange(int(16000 * frames / float(fps))) / 16000
        frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*sound.encode(frame), *sound.encode()]:
            out.mux(packet)
    out.close()
    return made


@contextlib.contextmanager
def trained_networks(names, *, why_unset: str | None = None):
    """``KERAS_HOME`` holding the trained networks ``names`` (gradfx weights' names) for the slow quality tests:
    ``GRADFX_TEST_KERAS_HOME`` when set (CI fetches there once and keeps it; a network missing there is fetched,
    or the test skips saying why), else the environment's own cache, where a missing network skips the test
    naming the fetch. ``why_unset``: skip when ``GRADFX_TEST_KERAS_HOME`` is unset, with this reason. Runs are
    offline inside (everything is here: nothing reaches for the network)."""
    from gradfx.engine.models import index

    home = os.environ.get("GRADFX_TEST_KERAS_HOME")
    if not home and why_unset:
        pytest.skip(f"GRADFX_TEST_KERAS_HOME is not set: {why_unset}")
    patch = pytest.MonkeyPatch()
    if home:
        patch.setenv("KERAS_HOME", home)
    try:
        missing = [name for name in names if index.cached(name) is None]
        if missing and home:
            try:
                index.fetch(missing)
            except index.FetchError as exc:
                pytest.skip(f"the networks {', '.join(missing)} are not in {home} and cannot be fetched ({exc})")
        elif missing:
            pytest.skip(f"the trained networks {', '.join(missing)} are not in {index.models_dir()}: run gradfx "
                        f"weights fetch {' '.join(missing)}, or set GRADFX_TEST_KERAS_HOME to a cache that has them")
        patch.setenv("GRADFX_OFFLINE", "1")
        yield index.models_dir()
    finally:
        patch.undo()
