"""The solver's large-image paths: gradients computed tile by tile under a random roll, and for a canvas too
large to copy (DeepDream at 4096 px), the update and each octave's preparation done band by band, with no
full-size temporary. The solver decides when they apply and gives them what they need: a :class:`Tiling` for
a tiled stage, plain settings for the band-by-band update and octave preparation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.tf import tf
from . import gradients, schedule

#: rows per band when a tiled canvas is updated or prepared band by band (a 4096 px wide band: 6 MB)
_BAND_ROWS = 128

#: the solver's objective: (image (B, H, W, 3), aligned images, step seed) -> scalar loss
Loss = Callable[[tf.Tensor, Mapping[str, tf.Tensor], tf.Tensor], tf.Tensor]


class GradBuffer:
    """The tile-gradient buffer: one variable per canvas size, kept from step to step (every tile overwrites
    its part) and replaced when the size changes; the solver frees it after each stage."""

    def __init__(self) -> None:
        self._var: tf.Variable | None = None

    def get(self, image: tf.Tensor, by_rows: bool) -> tf.Variable:
        """The buffer for ``image`` (B, H, W, C): that shape in float32, or with ``by_rows`` (a banded
        update) bfloat16 rows (H, W, C) of one image, read back a band at a time by the band update."""
        shape = tuple(image.shape[1:]) if by_rows else tuple(image.shape)
        if self._var is None or tuple(self._var.shape) != shape:
            self._var = None  # free the old one before allocating
            self._var = tf.Variable(tf.zeros(shape, tf.bfloat16 if by_rows else tf.float32), trainable=False,
                                    name="tile_gradient")
        return self._var

    def free(self) -> None:
        self._var = None


@dataclass(frozen=True)
class Tiling:
    """What a tiled stage needs from the solver, which builds one for each stage larger than the tile."""

    loss: Loss
    tile: int  #: the tile size (px)
    min_size: int  #: the model's minimum input: no tile span is made smaller
    banded: bool  #: the update runs band by band (:func:`make_band_apply`), the buffer holds bfloat16 rows
    count_trace: Callable[[], None]  #: called each time a step function is traced
    grads: GradBuffer


def make_tile_grad(tiling: Tiling) -> Callable:
    # Tiles come in up to four shapes per stage; relaxed shapes keep that to two traces (each trace of a
    # large backbone costs tens of MB).
    @tf.function(reduce_retracing=True)
    def tile_grad(crop: tf.Tensor, aligned: dict, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        tiling.count_trace()
        with tf.GradientTape() as tape:
            tape.watch(crop)
            loss = tiling.loss(crop, aligned, seed)
        grad = tape.gradient(loss, crop)
        return loss, tf.zeros_like(crop) if grad is None else grad

    return tile_grad


def make_band_apply(var: tf.Variable, *, lr: float, normalize: str, maximize: bool) -> Callable:
    """``apply(buffer)`` for a banded stage (:attr:`Tiling.banded`): the same update as the solver's whole
    one (normalise, step, clip to [0, 1]), with the normalisation statistic reduced band by band and the step
    slice-assigned band by band, so no temporary is larger than a band (the canvas may be 4096 px: 200 MB a
    float32 copy)."""
    bands = schedule.tile_spans(int(var.shape[1]), _BAND_ROWS)
    count = float(np.prod(var.shape))
    sign = -1.0 if maximize else 1.0

    def rows(buf: tf.Variable, y0: int, y1: int, after: Any) -> tf.Tensor:
        # a gather reads only these rows; a sliced read would copy the whole buffer (tile writes leave it
        # in TensorFlow's copy-on-read mode). Reading ``after`` the previous band's work keeps one band at a
        # time: unordered, the executor reads every band at once (a full-size float32 copy, 200 MB at 4096 px)
        with tf.control_dependencies([after]):
            return tf.cast(buf.sparse_read(tf.range(y0, y1)), tf.float32)[None]

    @tf.function
    def apply(buf: tf.Variable) -> tf.Tensor:
        scale, finite = gradients.banded_divisor(lambda y0, y1, after: rows(buf, y0, y1, after), bands, count,
                                                 normalize)
        if finite:
            done = scale
            for y0, y1 in bands:  # read by a gather, written in place: no full-size temporary
                done = _write(var, (0, y0, 0, 0), tf.clip_by_value(
                    _rows(var, y0, y1) - lr * (sign * (rows(buf, y0, y1, done) / scale)), 0.0, 1.0))
        return finite

    return apply


def tiled_value_and_grad(tiling: Tiling, tile_grad: Callable, image: tf.Tensor, aligned: dict,
                         seed: tf.Tensor, roll: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Objective and gradient summed over tiles of ``image``, under a random roll when ``roll``.

    Equivalent to tiling ``tf.roll(image, (dy, dx))`` and rolling the gradient back, but without any
    full-size temporary: each tile is gathered from ``image`` with wrapped indices and its gradient is
    written in place into one gradient buffer per canvas size, so memory is one tile's activations plus
    that buffer whatever the image size.
    """
    h, w = int(image.shape[1]), int(image.shape[2])
    if roll:
        shift = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=2**30, dtype=tf.int32)
        dy, dx = int(shift[0]) % h, int(shift[1]) % w
    else:
        dy = dx = 0
    buf = tiling.grads.get(image, tiling.banded)
    by_rows = buf.shape.rank == 3
    total = tf.constant(0.0)
    for y0, y1 in schedule.tile_spans(h, tiling.tile, tiling.min_size):
        ys = _wrapped(y0, y1, dy, h)
        if by_rows:  # the tile row's band of the rolled image, read by one gather (see make_band_apply)
            band = _rows(image, y0 - dy, y1 - dy)
        for x0, x1 in schedule.tile_spans(w, tiling.tile, tiling.min_size):
            xs = _wrapped(x0, x1, dx, w)
            crops = {k: _gather(v, ys, xs) for k, v in aligned.items()}
            crop = _gather(band, [(0, y1 - y0, 0, y1 - y0)], xs) if by_rows else _gather(image, ys, xs)
            loss, grad = tile_grad(crop, crops, seed)
            total += loss
            for t0, t1, i0, _ in ys:
                for u0, u1, j0, _ in xs:
                    if buf.shape.rank == 3:  # a banded buffer: rows first, one image
                        _write(buf, (i0, j0, 0), tf.cast(grad[0, t0:t1, u0:u1], buf.dtype))
                    else:
                        _write(buf, (0, i0, j0, 0), grad[:, t0:t1, u0:u1])
    return total, buf


def lean_stage(init: np.ndarray, coarse: tf.Variable | None, size: tuple[int, int], prev: tuple[int, int],
               reinject_detail: bool) -> tf.Variable:
    """The image variable of a stage of ``size`` (a tiled, banded stage), written band by band into the
    variable, so no full-size temporary exists beside it (a 4096 px float canvas is 200 MB).

    The first stage's is ``clip(resize(original, size))``; a later stage's is the general path's
    ``clip(resize(x, size) - resize(resize(original, prev), size) + resize(original, size))``, computed as
    ``clip(resize(x - resize(original, prev), size) + resize(original, size))`` (resizing is linear). Every
    term is resized band by band (:func:`schedule.resized_rows`) from rows of ``coarse`` (the previous
    stage's variable ``x``, of size ``prev``) and of the original ``init`` (converted from 8 bits a band at a
    time): equal to the general path up to float rounding.
    """
    init = init if np.ndim(init) == 3 else init[0]
    src = tuple(init.shape[:2])

    def original(a: int, b: int) -> tf.Tensor:
        return schedule.batched(init[a:b], 1)

    def detail(a: int, b: int) -> tf.Tensor:  # rows of x - resize(original, prev)
        x = _rows(coarse, a, b)
        return x - schedule.resized_rows(original, src, prev, a, b) if reinject_detail else x

    var = tf.Variable(tf.zeros((1, *size, 3)), trainable=True, name="image")
    for y0, y1 in schedule.tile_spans(size[0], _BAND_ROWS):
        if coarse is None:
            band = schedule.resized_rows(original, src, size, y0, y1)
        else:
            band = schedule.resized_rows(detail, prev, size, y0, y1)
            if reinject_detail:
                band += schedule.resized_rows(original, src, size, y0, y1)
        _write(var, (0, y0, 0, 0), tf.clip_by_value(band, 0.0, 1.0))
    return var


def _rows(var: tf.Variable, y0: int, y1: int) -> tf.Tensor:
    """Rows ``y0:y1`` (modulo H, so a band may wrap around) of a (1, H, W, C) variable, read by a gather: once a
    variable has been written in slices TensorFlow copies all of it on every ordinary read, but a gather
    copies only what it reads."""
    return tf.raw_ops.ResourceGather(resource=var.handle, indices=tf.range(y0, y1)[None] % var.shape[1],
                                     batch_dims=1, dtype=var.dtype)


def _write(var: tf.Variable, begin: tuple[int, ...], value: tf.Tensor) -> Any:
    """``var[begin : begin + value.shape] = value``, in place. ``var[...].assign`` would first read the whole
    variable (a full-size copy once it is in copy-on-read mode, see :func:`_rows`), and that read's reference
    makes the write copy the variable too; the raw op only writes the slice (and returns it, in a graph)."""
    end = [b + n for b, n in zip(begin, value.shape, strict=True)]
    return tf.raw_ops.ResourceStridedSliceAssign(ref=var.handle, begin=begin, end=end, strides=[1] * len(begin),
                                          value=value)


def _wrapped(start: int, end: int, shift: int, n: int) -> list[tuple[int, int, int, int]]:
    """Where positions ``start..end`` of an axis rolled by ``shift`` come from in the unrolled axis of length
    ``n``: contiguous pieces ``(tile_from, tile_to, image_from, image_to)`` (two when the span wraps)."""
    q0, length = (start - shift) % n, end - start
    if q0 + length <= n:
        return [(0, length, q0, q0 + length)]
    first = n - q0
    return [(0, first, q0, n), (first, length, 0, length - first)]


def _gather(t: tf.Tensor, ys: list[tuple[int, int, int, int]], xs: list[tuple[int, int, int, int]]) -> tf.Tensor:
    """The tile of ``t`` (B, H, W, C) described by :func:`_wrapped` pieces, built from tile-sized slices."""
    rows = [tf.concat([t[:, i0:i1, j0:j1] for _, _, j0, j1 in xs], axis=2) if len(xs) > 1
            else t[:, i0:i1, xs[0][2]:xs[0][3]] for _, _, i0, i1 in ys]
    return rows[0] if len(rows) == 1 else tf.concat(rows, axis=1)
