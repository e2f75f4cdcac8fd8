"""Gradient normalisation and clipping, and the straight-through quantiser.

DeepDream's step sizes assume a normalised gradient; style transfer and feature visualisation usually want
raw or clipped gradients. Each function takes and returns TensorFlow tensors and is safe inside
``tf.function``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import ParameterError
from ..models.tf import tf

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
    return grad / divisor(grad, mode)


def divisor(grad: tf.Tensor, mode: str) -> tf.Tensor:
    """What :func:`normalize` divides ``grad`` by in ``mode`` (std, mean or l2), epsilon included."""
    _check_normalize(mode)
    if mode == "std":
        return tf.math.reduce_std(grad) + _EPS
    if mode == "mean":
        return tf.reduce_mean(tf.abs(grad)) + _EPS
    return tf.norm(grad) + _EPS


def banded_divisor(read: Callable[[int, int, tf.Tensor], tf.Tensor], bands: Sequence[tuple[int, int]],
                   count: float, mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`divisor` of a gradient too large to copy as float32 (a 4096 px canvas), with its sums reduced band
    by band; and whether every value is finite. ``read(y0, y1, after)`` returns rows ``y0:y1`` as float32,
    read after ``after`` is computed (so one band at a time is held); ``count`` is the number of values."""
    _check_normalize(mode)
    total, finite = tf.constant(0.0), tf.constant(True)
    for y0, y1 in bands:
        g = read(y0, y1, total)
        finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        total += tf.reduce_sum(g if mode == "std" else tf.abs(g) if mode == "mean" else tf.square(g))
    if mode == "std":
        mean, total = total / count, tf.constant(0.0)
        for y0, y1 in bands:
            total += tf.reduce_sum(tf.square(read(y0, y1, total) - mean))
        return tf.sqrt(total / count) + _EPS, finite
    if mode == "mean":
        return total / count + _EPS, finite
    return tf.sqrt(total) + _EPS, finite


def _check_normalize(mode: str) -> None:
    if mode not in NORMALIZE_MODES or mode == "none":
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
