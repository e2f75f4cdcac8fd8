"""Gradient normalisation and clipping, and the straight-through quantiser.

DeepDream's step sizes assume a normalised gradient; style transfer and feature visualisation usually want
raw or clipped gradients. Each function takes and returns TensorFlow tensors and is safe inside
``tf.function``.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from .errors import ParameterError

NORMALIZE_MODES = ("none", "std", "mean", "l2")
CLIP_MODES = ("none", "value", "norm", "global_norm")
_EPS = 1e-8


def normalize(grad: tf.Tensor, mode: str | None) -> tf.Tensor:
    """Scale a gradient so its step size means the same at any image size and layer.

    ``std``: divide by the standard deviation (the TF DeepDream tutorial); ``mean``: by the mean absolute
    value (the original DeepDream notebook); ``l2``: by the L2 norm (the Keras examples). ``none`` or None:
    unchanged.
    """
    if mode in (None, "none"):
        return grad
    if mode == "std":
        return grad / (tf.math.reduce_std(grad) + _EPS)
    if mode == "mean":
        return grad / (tf.reduce_mean(tf.abs(grad)) + _EPS)
    if mode == "l2":
        return grad / (tf.norm(grad) + _EPS)
    raise ParameterError(f"gradient normalisation {mode!r} is unknown; use one of {', '.join(NORMALIZE_MODES)}")


def clip(grads: Sequence[tf.Tensor], mode: str | None, value: float | None) -> list[tf.Tensor]:
    """Clip a list of gradients: ``value`` element-wise to [-value, value], ``norm`` each tensor to L2 norm
    ``value``, ``global_norm`` the whole list to joint L2 norm ``value``; ``none`` or None: unchanged."""
    grads = list(grads)
    if mode in (None, "none") or value is None:
        return grads
    if value <= 0:
        raise ParameterError(f"gradient clip value {value!r} must be > 0")
    if mode == "value":
        return [tf.clip_by_value(g, -value, value) for g in grads]
    if mode == "norm":
        return [tf.clip_by_norm(g, value) for g in grads]
    if mode == "global_norm":
        clipped, _ = tf.clip_by_global_norm(grads, value)
        return list(clipped)
    raise ParameterError(f"gradient clipping {mode!r} is unknown; use one of {', '.join(CLIP_MODES)}")


def quantize(x: tf.Tensor, levels: int) -> tf.Tensor:
    """Round values in [0, 1] to ``levels`` evenly spaced levels per channel (no gradient)."""
    steps = float(levels - 1)
    return tf.round(tf.clip_by_value(x, 0.0, 1.0) * steps) / steps


def straight_through(x: tf.Tensor, levels: int | None) -> tf.Tensor:
    """Forward value ``quantize(x)``; gradient as if the quantiser were the identity.

    ``x + stop_gradient(q(x) - x)`` lets the optimiser see the quantised pixels it will finally write (8-bit
    output, posterised levels) while gradients pass straight through.
    """
    if not levels:
        return x
    return x + tf.stop_gradient(quantize(x, levels) - x)
