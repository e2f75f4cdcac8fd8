"""Schedules around the optimisation loop: octave sizes, resizing with detail re-injection, tiles."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import ParameterError
from ..models.tf import tf


def octave_sizes(size: tuple[int, int], octaves: int, scale: float, min_size: int = 1) -> list[tuple[int, int]]:
    """Image sizes (height, width) from coarsest to finest, the last being ``size``.

    Octave ``i`` of ``n`` is ``size / scale**(n-1-i)``, rounded, and never smaller than ``min_size`` on its
    short side (coarse octaves that would be are dropped, so the network always sees a valid input).
    """
    if octaves < 1:
        raise ParameterError(f"octaves {octaves!r} must be >= 1")
    if octaves > 1 and not scale > 1:
        raise ParameterError(f"octave_scale {scale!r} must be > 1 when octaves > 1")
    h, w = size
    out: list[tuple[int, int]] = []
    for i in range(octaves):
        f = scale ** (octaves - 1 - i)
        hw = (max(1, round(h / f)), max(1, round(w / f)))
        if min(hw) < min_size and i < octaves - 1:
            continue
        if hw not in out:
            out.append(hw)
    return out


def resize(images: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Resize a (B, H, W, C) batch to ``size`` (height, width) with antialiased bicubic interpolation."""
    images = tf.convert_to_tensor(images, tf.float32)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return tf.image.resize(images, size, method="bicubic", antialias=True)


def resized_rows(rows: Callable[[int, int], tf.Tensor], src: tuple[int, int], size: tuple[int, int], y0: int,
                 y1: int) -> tf.Tensor:
    """Rows ``y0:y1`` of ``resize(image, size)`` for an image of size ``src`` given band-wise: ``rows(a, b)`` is
    its rows ``a:b`` as a (1, b - a, W, C) float tensor. Only the rows the bicubic kernel reaches are read (the
    band and a halo), so resizing a large canvas band by band needs no full-size input or intermediate.

    The same kernel, scale and positions as :func:`resize` (``ScaleAndTranslate``, which that uses), offset by
    a translation: equal to the rows of the whole-image resize up to the float32 rounding of the sample
    positions (a 4096 px canvas prepared over three octaves: at most 1.7e-5, mean 2e-7; in 8 bits, about one
    value in three million rounds the other way).
    """
    if tuple(src) == tuple(size):
        return rows(y0, y1)
    sy = size[0] / src[0]
    # Keys cubic reaches 2 px, widened by 1 / scale when downscaling (antialias); +1 for rounding
    reach = 2 * max(1 / sy, 1.0) + 1
    a = max(0, math.floor((y0 + 0.5) / sy - 0.5 - reach))
    b = min(src[0], math.ceil((y1 - 0.5) / sy - 0.5 + reach) + 1)
    scale = tf.cast(size, tf.float32) / tf.cast(src, tf.float32)  # as tf.image.resize computes it
    return tf.raw_ops.ScaleAndTranslate(images=rows(a, b), size=[y1 - y0, size[1]], scale=scale,
                                        translation=tf.stack([a * scale[0] - y0, 0.0]), kernel_type="keyscubic",
                                        antialias=True)


def reinject_detail(
    image: tf.Tensor, original: Callable[[], tf.Tensor], previous: tuple[int, int], size: tuple[int, int]
) -> tf.Tensor:
    """``image`` (upscaled from the previous octave) plus the detail of the original at ``size`` that a round
    trip through ``previous`` loses: the Keras DeepDream example's re-injection, which restores the sharpness
    the coarse octave could not hold.

    ``original`` is called for the full-size original each time it is needed and its result is dropped at once,
    so at most about three full-size tensors are alive together (the canvas may be 4096 px).
    """
    image = image - resize(resize(original(), previous), size)
    return image + resize(original(), size)


def tile_spans(length: int, tile: int, min_span: int = 1) -> list[tuple[int, int]]:
    """Split ``range(length)`` into near-equal contiguous spans of at most ``tile`` (so at most two shapes).

    No span is shorter than ``min_span`` (the network's smallest input): where ``tile`` spans would be, fewer
    and slightly longer spans are used instead (a 48 px side in 40 px tiles with a 32 px minimum is one span).
    """
    if tile <= 0 or length <= tile:
        return [(0, length)]
    n = math.ceil(length / tile)
    while n > 1 and length // n < min_span:
        n -= 1
    base, extra = divmod(length, n)
    spans, start = [], 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        spans.append((start, end))
        start = end
    return spans


def tiles(size: tuple[int, int], tile: int, min_span: int = 1) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) boxes covering an image of ``size`` with tiles of about ``tile`` pixels a side."""
    return [(y0, y1, x0, x1) for y0, y1 in tile_spans(size[0], tile, min_span)
            for x0, x1 in tile_spans(size[1], tile, min_span)]


def batched(image: np.ndarray | tf.Tensor, batch: int) -> tf.Tensor:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:  # an 8-bit original: the same floats as k / 255
        t = _from_8bit(tf.convert_to_tensor(image))
    else:
        t = tf.convert_to_tensor(image, tf.float32)
    if t.shape.rank == 3:
        t = t[None]
    if t.shape[0] != batch:
        if t.shape[0] != 1:
            raise ParameterError(f"init has a batch of {t.shape[0]} images but the problem asks for {batch}")
        t = tf.repeat(t, batch, axis=0)
    return t


@tf.function
def _from_8bit(image: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 ``k / 255``, in one graph so the division reuses the cast's buffer (one full-size copy)."""
    return tf.cast(image, tf.float32) / 255.0
