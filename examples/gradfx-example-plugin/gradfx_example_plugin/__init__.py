"""An example third-party gradfx plugin: the ``posterize-dream`` effect.

DeepDream on one VGG layer, with the image quantised to ``levels`` values per channel *inside* the
optimisation loop (a straight-through estimator: the network sees the posterised image while gradients pass as
if the quantiser were the identity), so the ascent optimises the posterised picture it will finally write.

The effect owns no loop: it describes a :class:`gradfx.engine.Problem` and the shared engine solves it, with
progress, cancellation, seeds, octaves and tiles for free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradfx.engine import Choice, Effect, Float, Int, Output, RunContext, Str, hookimpl

__version__ = "0.1.0"


class PosterizeDream(Effect):
    name = "posterize-dream"
    summary = "DeepDream one VGG layer with the image posterised to a few levels inside the loop"
    params = (
        Str("layer", "block3_conv3", "layer whose mean activation is maximised (see 'gradfx models vgg16')"),
        Int("levels", 4, "values per colour channel; the network sees the posterised image", min=2, max=256),
        Int("steps", 20, "gradient-ascent steps per octave", min=1, max=10_000),
        Float("step_size", 0.02, "step size; the gradient is normalised by its standard deviation",
              min=1e-5, max=1.0),
        Int("octaves", 1, "coarse-to-fine scales, 1.4x apart", min=1, max=8),
        Choice("normalize", "std", ("std", "mean", "l2"), "gradient normalisation"),
        Int("tile", 0, "tile size in px for large images (0 = whole image)", min=0),
    )
    model = "vgg16"
    models = ("vgg16", "vgg19")

    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Any:
        from gradfx.engine import Problem  # imports TensorFlow: only when the effect runs
        from gradfx.engine.objectives import layer_mean

        return Problem(
            objective=layer_mean(params["layer"]),
            init=ctx.input.rgb,
            maximize=True,
            steps=params["steps"],
            octaves=params["octaves"],
            optimizer="sgd",
            lr=params["step_size"],
            normalize=params["normalize"],
            levels=params["levels"],
            tile=params["tile"],
            label=f"posterize-dream {params['layer']}",
        )

    def finish(self, ctx: RunContext, params: Mapping[str, Any], solution: Any) -> Output:
        image = np.asarray(solution.image, np.float32)
        values = int(np.unique(np.round(image * 255)).size)
        return Output(image, report={"levels": params["levels"], "distinct_channel_values": values})


EFFECTS = (PosterizeDream(),)


@hookimpl
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    for effect in EFFECTS:
        register(effect)
