"""Style transfer's loss terms: content, style (Gram matrices, blended and masked styles, what enters a video
frame) and total variation, sharing the canvas size the engine binds per stage."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gradfx.engine.styles import style_size

#: the side of the canvas the tutorial's total-variation weight was tuned on (its images' longest side)
TV_REFERENCE_SIDE = 512
#: the aligned image of a video frame's pixels that entered the picture (1)
ENTERING = "temporal_entering"


class Terms:
    """The three loss terms of one run; they share the canvas size the engine binds per stage."""

    def __init__(self, *, content_layers: Mapping[str, float], style_layers: Mapping[str, float],
                 styles: Sequence[np.ndarray], blend: Sequence[float], masked: bool, style_scale: float,
                 min_size: int) -> None:
        self.content_layers = dict(content_layers)
        self.style_layers = dict(style_layers)
        self.styles = list(styles)
        self.blend = list(blend)
        self.masked = masked
        self.style_scale = style_scale
        self.min_size = min_size
        self.canvas: tuple[int, int] = (1, 1)
        self.extract: Any = None
        self.content_target: dict[str, Any] | None = None
        self.style_targets: list[dict[str, Any]] = []

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

    def bind_style(self, ctx: Any) -> None:
        import tensorflow as tf

        from gradfx.engine.optimise import schedule

        self.bind_canvas(ctx)
        targets = []
        for style in self.styles:  # never below the model's minimum input
            image = schedule.resize(tf.constant(style[None]),
                                    style_size(style.shape, ctx.size, self.style_scale, self.min_size))
            layers = tuple(self.style_layers)
            targets.append(global_grams(ctx.features, image, layers, ctx.tile, self.min_size))
        if not self.masked:  # one blended target: sum_s b_s |G - G_s|^2 = |G - sum_s b_s G_s|^2 + const
            total = sum(self.blend)
            blended = {k: sum(b / total * t[k] for b, t in zip(self.blend, targets, strict=True))
                       for k in self.style_layers}
            targets = [blended]
        self.style_targets = [{k: tf.stop_gradient(v) for k, v in t.items()} for t in targets]

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

    def style(self, f: Mapping[str, Any], c: Any) -> Any:
        return self._style(f, c)

    def entering(self, f: Mapping[str, Any], c: Any) -> Any:
        """The style loss of the pixels that entered the picture with this video frame, on their own (the
        aligned image :data:`ENTERING`; see :meth:`StyleTransfer.build`). Reads the targets the style term
        bound."""
        return self._style(f, c, region=ENTERING)

    def _style(self, f: Mapping[str, Any], c: Any, region: str = "") -> Any:
        """Over the style layers, the mean squared difference of the Gram matrices to the targets. A region
        (a masked style's mask, times the aligned image ``region`` if given) has its own Gram, the mean outer
        product over its positions, and its term is weighted by its share of the canvas, so each of its
        pixels is pushed as hard as in a whole-canvas term."""
        import tensorflow as tf

        from gradfx.engine.objectives import gram_matrix

        total = sum(self.style_layers.values())
        blend = self.blend if self.masked else [1.0]
        terms = []
        for k, w in self.style_layers.items():
            if w <= 0:
                continue
            feats = f[k]
            if not (self.masked or region):
                diff = gram_matrix(feats) - self.style_targets[0][k]
                terms.append(w / total * tf.reduce_mean(tf.square(diff)))
                continue
            size = tf.shape(feats)[1:3]

            def at_layer(name: str, size: Any = size) -> Any:  # an aligned mask at this layer's resolution
                return tf.clip_by_value(tf.image.resize(c.aligned[name], size, method="area"), 0.0, 1.0)

            for s, (b, target) in enumerate(zip(blend, self.style_targets, strict=True)):
                m = at_layer(f"mask{s}") if self.masked else 1.0
                if region:
                    m = m * at_layer(region)
                gram = tf.einsum("bijc,bijd->bcd", feats * m, feats) / (tf.reduce_sum(m) + 1e-6)
                terms.append(b * w / total * tf.reduce_mean(m) * tf.reduce_mean(tf.square(gram - target[k])))
        return tf.add_n(terms) * self.area_fraction(c.image)

    def tv(self, f: Mapping[str, Any], c: Any) -> Any:
        import tensorflow as tf

        x = c.image
        total = tf.reduce_sum(tf.abs(x[:, 1:] - x[:, :-1])) + tf.reduce_sum(
            tf.abs(x[:, :, 1:] - x[:, :, :-1]))
        return total * (TV_REFERENCE_SIDE / math.sqrt(self.canvas[0] * self.canvas[1]))

def global_grams(extract: Any, image: Any, layers: tuple[str, ...], tile: int,
                  min_size: int) -> dict[str, Any]:
    """Gram matrices of the whole ``image``, divided by its number of positions. With ``tile`` the sum of
    outer products is accumulated tile by tile (a Gram is a sum over positions), so memory stays bounded."""
    import tensorflow as tf

    from gradfx.engine.optimise import schedule

    h, w = int(image.shape[1]), int(image.shape[2])
    sums: dict[str, Any] = {}
    counts = dict.fromkeys(layers, 0)
    step = max(tile, 2 * min_size) if tile else 0  # larger pieces: fewer border effects in the target
    for y0, y1, x0, x1 in schedule.tiles((h, w), step, min_size):
        feats = extract(image[:, y0:y1, x0:x1])
        for k in layers:
            fk = feats[k]
            g = tf.einsum("bijc,bijd->bcd", fk, fk)
            sums[k] = g if k not in sums else sums[k] + g
            counts[k] += int(fk.shape[1]) * int(fk.shape[2])
    return {k: sums[k] / float(counts[k]) for k in layers}
