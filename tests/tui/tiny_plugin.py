"""A tiny plugin for TUI tests: two steps of DeepDream on VGG16's first block (a second on a 40 px image).

Loaded by the Pilot tests through ``registry.add_plugin`` and by the tmux script through
``gradfx tui --plugin tiny_plugin`` (with this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradfx.engine import Bool, Choice, Effect, Float, Image, Int, hookimpl


class TinyDream(Effect):
    name = "tiny-dream"
    summary = "a two-step dream on VGG16's first block, for tests"
    params = (
        Int("steps", 2, "optimisation steps", min=1, max=50),
        Float("lr", 0.02, "step size", min=0.0, max=1.0),
        Choice("layer", "block1_conv2", ("block1_conv1", "block1_conv2"), "layer to excite"),
        Bool("invert", False, "descend instead of ascend"),
        Image("guide", "an optional image (unused; shows the file picker)"),
    )
    model = "vgg16"

    def build(self, ctx: Any, params: Any) -> Any:
        from gradfx.engine import Problem
        from gradfx.engine.objectives import layer_mean

        return Problem(objective=layer_mean(params["layer"]), init=ctx.input.rgb, maximize=not params["invert"],
                       steps=params["steps"], optimizer="sgd", lr=params["lr"], normalize="std")


class Broken(Effect):
    name = "tiny-broken"
    summary = "always fails, for the error dialog"
    params = (Int("steps", 1, "steps", min=1),)
    model = "vgg16"

    def build(self, ctx: Any, params: Any) -> Any:
        raise RuntimeError("this effect is broken on purpose")


EFFECTS = (TinyDream(), Broken())


@hookimpl
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    for effect in EFFECTS:
        register(effect)
