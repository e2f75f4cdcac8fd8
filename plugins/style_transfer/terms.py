"""Style transfer's own loss terms: content and total variation, sharing the canvas size the engine binds per
stage. Its style term (Gram matrices, blended and masked styles, what enters a video frame) is the engine's
public :func:`gradfx.engine.objectives.style_loss`, which plugins use too."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: the side of the canvas the tutorial's total-variation weight was tuned on (its images' longest side)
TV_REFERENCE_SIDE = 512
#: the aligned image of a video frame's pixels that entered the picture (1)
ENTERING = "temporal_entering"
#: the aligned image weighting total variation per pixel (a video frame after the first: less where the pixels
#: are carried from the previous frame, see :data:`gradfx.plugins.style_transfer.CARRIED_TV`)
TV_MAP = "temporal_tv"


class Terms:
    """The content and total-variation terms of one run; they share the canvas size the engine binds per
    stage. The style term is the engine's :func:`gradfx.engine.objectives.style_loss`."""

    def __init__(self, *, content_layers: Mapping[str, float]) -> None:
        self.content_layers = dict(content_layers)
        self.canvas: tuple[int, int] = (1, 1)
        self.extract: Any = None
        self.content_target: dict[str, Any] | None = None

    # --- per stage ------------------------------------------------------------------------------------
    def bind_canvas(self, ctx: Any) -> None:
        self.canvas = tuple(ctx.size)
        self.extract = ctx.features

    def bind_content(self, ctx: Any) -> None:
        import tensorflow as tf

        self.bind_canvas(ctx)
        # ctx.tile, not the parameter: the engine may retry a run with smaller tiles after running out of memory
        if ctx.tile:  # each tile reads its own crop of the aligned content image, rolled with the canvas
            self.content_target = None
        else:
            feats = ctx.features(ctx.aligned["content"])
            self.content_target = {k: tf.stop_gradient(feats[k]) for k in self.content_layers}

    # --- per step -------------------------------------------------------------------------------------
    def area_fraction(self, image: Any) -> Any:
        """The share of the canvas this step's image covers (1 untiled): tile losses are area-weighted so
        their sum over the tiles of the canvas is comparable with the whole-image loss. Dynamic shapes:
        the solver may trace tiles with relaxed shapes."""
        import tensorflow as tf

        shape = tf.shape(image)
        return tf.cast(shape[1] * shape[2], tf.float32) / float(self.canvas[0] * self.canvas[1])

    def content(self, f: Mapping[str, Any], c: Any) -> Any:
        import tensorflow as tf

        target = self.content_target
        if target is None:
            feats = self.extract(c.aligned["content"])
            target = {k: tf.stop_gradient(feats[k]) for k in self.content_layers}
        total = sum(self.content_layers.values())
        loss = tf.add_n([w / total * tf.reduce_mean(tf.square(f[k] - target[k]))
                         for k, w in self.content_layers.items() if w > 0])
        return loss * self.area_fraction(c.image)

    def tv(self, f: Mapping[str, Any], c: Any) -> Any:
        import tensorflow as tf

        x = c.image
        down, right = tf.abs(x[:, 1:] - x[:, :-1]), tf.abs(x[:, :, 1:] - x[:, :, :-1])
        if TV_MAP in c.aligned:  # each difference weighted by the mean of its two pixels' weights
            w = c.aligned[TV_MAP]
            down, right = down * (w[:, 1:] + w[:, :-1]) / 2, right * (w[:, :, 1:] + w[:, :, :-1]) / 2
        total = tf.reduce_sum(down) + tf.reduce_sum(right)
        return total * (TV_REFERENCE_SIDE / math.sqrt(self.canvas[0] * self.canvas[1]))
