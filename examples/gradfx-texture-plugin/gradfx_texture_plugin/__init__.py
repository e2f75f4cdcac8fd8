"""An example third-party gradfx plugin: the ``texture`` effect, Gram-matrix texture synthesis (Gatys, Ecker &
Bethge 2015).

It makes an image from nothing (seeded noise) whose Gram matrices at a few VGG layers match a texture image's:
the same local statistics (colours, strokes, their orientations), none of the layout. The objective is the
engine's public ``style_loss``, the one style-transfer minimises, alone; the engine solves it (L-BFGS by
default), with progress, seeds, octaves and tiles for free. Written from docs/plugins.md alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gradfx.engine import Choice, Effect, Float, Image, Int, Layers, ParameterError, RunContext, hookimpl

__version__ = "0.1.0"

LAYERS = "block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1"


class Texture(Effect):
    name = "texture"
    summary = "Texture synthesis: an image from noise whose Gram matrices match a texture image's"
    params = (
        Image("texture", "the texture image to imitate", required=True),
        Int("size", 256, "longest side of the output in pixels", min=1, max=4096, model_min=True),
        Float("aspect", 1.0, "width / height of the output", min=0.1, max=10.0),
        Layers("layers", LAYERS, "layers whose Gram matrices are matched, each optionally :weight"),
        Float("scale", 1.0, "the texture's size relative to the output's (smaller: finer grain)", min=0.05,
              max=8.0),
        Choice("optimizer", "lbfgs", ("lbfgs", "adam"), "L-BFGS (steps are loss evaluations) or Adam"),
        Float("lr", 0.02, "Adam's learning rate", min=1e-5, max=1.0),
        Int("steps", 100, "optimisation steps per octave", min=1, max=100_000),
        Int("octaves", 1, "coarse-to-fine stages, 1.4x apart", min=1, max=6),
        Float("tv_weight", 0.0, "weight of total variation (smoothness) against the Gram loss, whose scale a run "
              "report's losses show (1e5 to 1e11 from noise)", min=0.0),
    )
    model = "vgg19"
    models = ("vgg16", "vgg19")  # the layer names are both VGGs'
    needs_input = False  # it makes its image from nothing

    def check_spec(self, params: Mapping[str, Any], spec: Any) -> None:
        """The output's short side, against the model's smallest input (``size`` alone is checked for us)."""
        height, width = shape(params)
        if min(height, width) < spec.min_size:
            raise ParameterError(f"parameter 'aspect': {params['aspect']:g} makes a {width}x{height} image, "
                                 f"below {spec.name}'s minimum of {spec.min_size} px; use a larger size or an "
                                 "aspect nearer 1")

    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Any:
        from gradfx.engine import Problem  # imports TensorFlow: only when the effect runs
        from gradfx.engine.objectives import style_loss, total_variation

        objective = style_loss(ctx.image(params["texture"]), params["layers"], scale=params["scale"])
        if params["tv_weight"] > 0:
            objective = objective + params["tv_weight"] * total_variation()
        return Problem(objective=objective, init=None, size=shape(params), steps=params["steps"],
                       optimizer=params["optimizer"], lr=params["lr"], octaves=params["octaves"],
                       label="texture")


def shape(params: Mapping[str, Any]) -> tuple[int, int]:
    """(height, width) of the output: its longest side ``size``, width / height ``aspect``."""
    size, aspect = params["size"], params["aspect"]
    if aspect >= 1:
        return max(1, round(size / aspect)), size
    return size, max(1, round(size * aspect))


@hookimpl
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    register(Texture())
