"""Style: Gram matrices, and Gatys et al.'s style loss, the objective that makes a canvas's feature statistics
match those of style (or texture) images, whole or tiled.

    from gradfx.engine.objectives import style_loss
    Problem(objective=style_loss(texture, "block1_conv1,block2_conv1,block3_conv1"), init=None, size=(128, 128))

A Gram matrix is the mean outer product of a layer's activations over its positions (:func:`gram_matrix`),
which does not depend on the image's size, so a target computed from a style image of one size applies to a
canvas of another. The style-transfer effect's style term is this objective (with its masks, and
:meth:`StyleLoss.within` for the pixels entering a video frame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..layers import parse_layer_weights
from ..models.tf import tf
from ..optimise import schedule
from ..styles import style_size
from .base import BindContext, Features, Objective, StepContext


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Gram matrices of (B, H, W, C) activations, divided by the number of positions H*W -> (B, C, C).

    This is the TensorFlow style-transfer tutorial's normalisation: the result does not depend on the image
    size, so a style target computed at one size applies at another.
    """
    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    locations = tf.cast(shape[1] * shape[2], features.dtype)
    # A batched matmul over (B, H*W, C): the same sum as einsum("bijc,bijd->bcd"), ~1.4x faster on CPU.
    flat = tf.reshape(features, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    return tf.linalg.matmul(flat, flat, transpose_a=True) / locations


def gram_targets(ctx: BindContext, image: Any, layers: Sequence[str]) -> dict[str, tf.Tensor]:
    """For a bind step: the Gram matrices at ``layers`` of a whole ``image`` (H x W x 3 or 1 x H x W x 3, in
    [0, 1], each side at least ``ctx.min_size``), as :func:`gram_matrix` computes them. Under tiles
    (``ctx.tile``) the sums of outer products are accumulated piece by piece, so memory stays bounded."""
    image = tf.convert_to_tensor(image, tf.float32)
    if image.shape.rank == 3:
        image = image[None]
    h, w = int(image.shape[1]), int(image.shape[2])
    sums: dict[str, Any] = {}
    counts = dict.fromkeys(layers, 0)
    # pieces of twice the model's minimum at least: fewer border effects in the target
    step = max(ctx.tile, 2 * ctx.min_size) if ctx.tile else 0
    for y0, y1, x0, x1 in schedule.tiles((h, w), step, ctx.min_size):
        feats = ctx.features(image[:, y0:y1, x0:x1])
        for k in layers:
            fk = feats[k]
            g = tf.einsum("bijc,bijd->bcd", fk, fk)
            sums[k] = g if k not in sums else sums[k] + g
            counts[k] += int(fk.shape[1]) * int(fk.shape[2])
    return {k: sums[k] / float(counts[k]) for k in layers}


class StyleLoss(Objective):
    """Gatys et al.'s style loss (a minimised objective): over the style layers, with their weights normalised
    to sum 1, the mean squared difference between the canvas's Gram matrices and the style images'; see
    :func:`style_loss`. After each stage's bind, :attr:`targets` holds the targets, one ``{layer: (1, C, C)}``
    per masked style, or the one blended target."""

    def __init__(self, styles: Sequence[Any], layers: Any, *, blend: Sequence[float] | None = None,
                 scale: float = 1.0, masks: Sequence[str] = (), description: str = "") -> None:
        images = [np.asarray(getattr(s, "rgb", s), np.float32) for s in styles]
        if not images or any(im.ndim != 3 or im.shape[-1] != 3 for im in images):
            raise ParameterError("style_loss: give one or more style images, each height x width x 3 in [0, 1]")
        weights = _layer_weights(layers)
        blend = tuple(float(b) for b in blend) if blend is not None else (1.0,) * len(images)
        if len(blend) != len(images) or min(blend) < 0 or sum(blend) <= 0:
            raise ParameterError(f"style_loss: blend needs one weight >= 0 per style image ({len(images)}), not "
                                 "all 0")
        if masks and len(masks) != len(images):
            raise ParameterError(f"style_loss: masks names one aligned image per style image ({len(images)})")
        if not scale > 0:
            raise ParameterError(f"style_loss: scale must be > 0, not {scale!r}")
        self.styles, self.weights, self.blend = images, weights, blend
        self.scale, self.masks = float(scale), tuple(masks)
        self.canvas: tuple[int, int] = (1, 1)
        self.targets: list[dict[str, tf.Tensor]] = []
        super().__init__(lambda f, c: self._value(f, c), description or (
            f"style_loss({len(images)} image(s); {','.join(weights)})"), tuple(weights), bind=self._bind)

    def _bind(self, ctx: BindContext) -> None:
        self.canvas = tuple(ctx.size)
        layers = tuple(self.weights)
        targets = []
        for style in self.styles:
            size = style_size(style.shape, ctx.size, self.scale, ctx.min_size)
            targets.append(gram_targets(ctx, schedule.resize(tf.constant(style[None]), size), layers))
        if not self.masks:  # one blended target: sum_s b_s |G - G_s|^2 = |G - sum_s b_s G_s|^2 + const
            total = sum(self.blend)
            targets = [{k: sum(b / total * t[k] for b, t in zip(self.blend, targets, strict=True))
                        for k in layers}]
        self.targets = [{k: tf.stop_gradient(v) for k, v in t.items()} for t in targets]

    def within(self, region: str, description: str = "") -> Objective:
        """This loss over the pixels of the aligned image ``region`` only (weights in [0, 1]), as if those
        pixels were a masked style's region, reading this objective's targets: use it in the same problem
        objective as this one, which binds them (style-transfer's term for what enters a video frame)."""
        return Objective(lambda f, c: self._value(f, c, region), description or f"{self.description} within "
                         f"{region}", tuple(self.weights))

    def _value(self, f: Features, c: StepContext, region: str | None = None) -> tf.Tensor:
        """Over the style layers, the mean squared difference of the Gram matrices to the targets. A region
        (a masked style's mask, times the aligned image ``region`` if given) has its own Gram, the mean outer
        product over its positions, and its term is weighted by its share of the canvas, so each of its
        pixels is pushed as hard as in a whole-canvas term. A tile's loss is weighted by its share of the
        canvas, so the tiles' losses add up to the whole canvas's."""
        if not self.targets:
            raise ParameterError(f"{self.description}: its targets are not bound; put the style loss itself in "
                                 "the problem's objective")
        total = sum(self.weights.values())
        blend = self.blend if self.masks else [1.0]
        terms = []
        for k, w in self.weights.items():
            if w <= 0:
                continue
            feats = f[k]
            if not (self.masks or region):
                diff = gram_matrix(feats) - self.targets[0][k]
                terms.append(w / total * tf.reduce_mean(tf.square(diff)))
                continue
            size = tf.shape(feats)[1:3]

            def at_layer(name: str, size: Any = size) -> Any:  # an aligned mask at this layer's resolution
                return tf.clip_by_value(tf.image.resize(c.aligned[name], size, method="area"), 0.0, 1.0)

            for s, (b, target) in enumerate(zip(blend, self.targets, strict=True)):
                m = at_layer(self.masks[s]) if self.masks else 1.0
                if region:
                    m = m * at_layer(region)
                gram = tf.einsum("bijc,bijd->bcd", feats * m, feats) / (tf.reduce_sum(m) + 1e-6)
                terms.append(b * w / total * tf.reduce_mean(m) * tf.reduce_mean(tf.square(gram - target[k])))
        shape = tf.shape(c.image)
        area = tf.cast(shape[1] * shape[2], tf.float32) / float(self.canvas[0] * self.canvas[1])
        return tf.add_n(terms) * area


def style_loss(style: Any, layers: Any, *, blend: Sequence[float] | None = None, scale: float = 1.0,
               masks: Sequence[str] = (), description: str = "") -> StyleLoss:
    """Gatys et al.'s style loss, to minimise (``maximize=False``): how far the canvas's Gram matrices at
    ``layers`` are from a style or texture image's.

    - ``style``: an image, H x W x 3 floats in [0, 1] (or a :class:`~gradfx.engine.LoadedImage`, as
      ``ctx.image`` returns), or a list of them;
    - ``layers``: ``"block1_conv1,block2_conv1:0.5"`` (a :func:`~gradfx.engine.Layers` parameter's value),
      layer names, or ``{name: weight}``; weights are normalised to sum 1;
    - ``blend``: one weight per style image (default equal): the target is the blend of their Grams;
    - ``scale``: each style image is resized, per stage, so its longest side is ``scale`` times the canvas's
      (smaller: finer strokes), never below the model's minimum input;
    - ``masks``: names of ``Problem(aligned=...)`` images, one per style image (H x W x 1 in [0, 1]): each
      style applies only where its mask is, weighted by ``blend``.

    The targets are computed once per stage, in ``bind`` (tile by tile under ``tile``); each step compares
    the canvas's (or the tile's) Grams with them, so the loss works whole, tiled and across octaves. Its value
    does not depend on the canvas's size; it is in the squared activations' units, so its scale depends on the
    network, layers and style (from noise: 1e5 to 1e7 on VGG16, random or HED-fine-tuned; 1e11 on ImageNet
    VGG19's five default style layers), falling by orders of magnitude as the style is matched.
    """
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    return StyleLoss(styles, layers, blend=blend, scale=scale, masks=masks, description=description)


def _layer_weights(layers: Any) -> dict[str, float]:
    """``{layer: weight}`` from a layer list's text, a parsed list, names or a mapping (checked as
    :func:`~gradfx.engine.parse_layer_weights` checks them)."""
    if isinstance(layers, Mapping):
        layers = list(layers.items())
    try:
        return dict(parse_layer_weights(layers))
    except ValueError as exc:
        raise ParameterError(f"style_loss: layers {layers!r}: {exc}") from None


__all__ = ["StyleLoss", "gram_matrix", "gram_targets", "style_loss", "style_size"]
