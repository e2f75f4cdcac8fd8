"""Differentiable random image transforms (lucid's ``transform`` module for TensorFlow 2).

Each transform is a callable ``fn(images, seed) -> images`` on a (B, H, W, 3) batch, built only from
differentiable TensorFlow ops, and random through stateless ops seeded by the solver's per-step ``seed``
tensor (shape [2]): the same seed gives the same transform, so runs repeat bit for bit. Each transform folds
its own ``salt`` into the seed, so two transforms in one chain draw independent numbers.

Like lucid's, ``pad`` grows the image, ``jitter`` crops it (a random crop ``d`` px smaller) and
``random_scale`` resizes it; the network does not care, the canvas keeps its size. ``random_rotate``
resamples bilinearly through a sampling grid (no tensorflow-addons), repeating the edge pixels outside.

    standard_transforms()        # pad 12, jitter 8, scale 0.9..1.1, rotate -10..10 deg, jitter 4
    parse_transforms("pad(16), jitter(8), rotate(-5, 0, 5)")
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence

from .errors import ParameterError
from .models.tf import tf

__all__ = [
    "Transform",
    "jitter",
    "pad",
    "parse_transforms",
    "random_rotate",
    "random_scale",
    "resize_to",
    "standard_transforms",
]


class Transform:
    """A named transform: ``fn(images, seed)`` with a readable ``repr`` and a salt for its random numbers."""

    def __init__(self, description: str, salt: int | None = None) -> None:
        self.description = description
        self.salt = zlib.crc32(description.encode("utf8")) & 0x7FFFFFFF if salt is None else int(salt)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _seed(self, seed: tf.Tensor) -> tf.Tensor:
        return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), self.salt)

    def _choose(self, values: Sequence[float], seed: tf.Tensor) -> tf.Tensor:
        """One of ``values``, uniformly (lucid's ``_rand_select``)."""
        index = tf.random.stateless_uniform([], seed=self._seed(seed), minval=0, maxval=len(values),
                                            dtype=tf.int32)
        return tf.gather(tf.constant(values, tf.float32), index)

    def __repr__(self) -> str:
        return self.description


class _Pad(Transform):
    def __init__(self, width: int, mode: str, value: float, salt: int | None) -> None:
        super().__init__(f"pad({width})" if mode == "CONSTANT" else f"pad({width}, {mode.lower()})", salt)
        self.width, self.mode, self.value = int(width), mode, float(value)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        w = self.width
        pads = [[0, 0], [w, w], [w, w], [0, 0]]
        if self.mode == "CONSTANT":
            return tf.pad(images, pads, constant_values=self.value)
        return tf.pad(images, pads, mode=self.mode)


def pad(width: int, mode: str = "constant", value: float = 0.5, salt: int | None = None) -> Transform:
    """Pad every side by ``width`` px: ``constant`` (``value``, mid-grey by default), ``reflect`` or
    ``symmetric``."""
    mode = mode.upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ParameterError(f"pad mode {mode.lower()!r} is unknown; use constant, reflect or symmetric")
    if width < 0:
        raise ParameterError(f"pad width {width} must be >= 0")
    return _Pad(width, mode, value, salt)


class _Jitter(Transform):
    def __init__(self, d: int, salt: int | None) -> None:
        super().__init__(f"jitter({d})", salt)
        self.d = int(d)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        d = self.d
        if d == 0:
            return images
        offset = tf.random.stateless_uniform([2], seed=self._seed(seed), minval=0, maxval=d + 1, dtype=tf.int32)
        shape = tf.shape(images)
        return tf.slice(images, [0, offset[0], offset[1], 0], [-1, shape[1] - d, shape[2] - d, -1])


def jitter(d: int, salt: int | None = None) -> Transform:
    """A random crop ``d`` px smaller in each dimension (lucid's ``jitter``: shifts the image by 0..d px)."""
    if d < 0:
        raise ParameterError(f"jitter {d} must be >= 0")
    return _Jitter(d, salt)


class _Scale(Transform):
    def __init__(self, scales: Sequence[float], salt: int | None) -> None:
        super().__init__(f"scale({', '.join(f'{s:g}' for s in scales)})", salt)
        self.scales = [float(s) for s in scales]

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        scale = self._choose(self.scales, seed)
        hw = tf.cast(tf.shape(images)[1:3], tf.float32)
        size = tf.maximum(tf.cast(tf.round(scale * hw), tf.int32), 1)
        return tf.image.resize(images, size, method="bilinear")


def random_scale(scales: Sequence[float], salt: int | None = None) -> Transform:
    """Resize by a factor drawn uniformly from ``scales`` (bilinear, the image size changes)."""
    scales = list(scales)
    if not scales or any(not (s > 0) for s in scales):
        raise ParameterError(f"scales {scales!r} must be one or more numbers > 0")
    return _Scale(scales, salt)


def rotate(images: tf.Tensor, radians: tf.Tensor | float) -> tf.Tensor:
    """Rotate a batch about its centre by ``radians`` (counter-clockwise), bilinear, edge pixels repeated.

    The output pixel (y, x) samples the input at the inversely rotated position; the gradient flows to the
    four input pixels each sample reads (an exact adjoint, unlike a resampling-based gradient).
    """
    shape = tf.shape(images)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    angle = tf.cast(radians, tf.float32)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
    yy, xx = tf.meshgrid(tf.range(hf) - cy, tf.range(wf) - cx, indexing="ij")
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Image rows grow downwards, so a counter-clockwise turn on screen maps (x, y) by the transposed matrix.
    sy = cos * yy + sin * xx + cy
    sx = -sin * yy + cos * xx + cx
    sy = tf.clip_by_value(sy, 0.0, hf - 1.0)
    sx = tf.clip_by_value(sx, 0.0, wf - 1.0)
    y0, x0 = tf.floor(sy), tf.floor(sx)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0i, x0i = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1i, x1i = tf.minimum(y0i + 1, h - 1), tf.minimum(x0i + 1, w - 1)
    flat = tf.reshape(images, tf.stack([b, h * w, c]))

    def at(yi: tf.Tensor, xi: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.gather(flat, tf.reshape(yi * w + xi, [-1]), axis=1), tf.stack([b, h, w, c]))

    top = at(y0i, x0i) * (1.0 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1.0 - wx) + at(y1i, x1i) * wx
    return top * (1.0 - wy) + bottom * wy


class _Rotate(Transform):
    def __init__(self, angles: Sequence[float], salt: int | None) -> None:
        super().__init__(f"rotate({', '.join(f'{a:g}' for a in angles)})", salt)
        self.angles = [float(a) for a in angles]

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if all(a == 0 for a in self.angles):
            return images
        return rotate(images, self._choose(self.angles, seed) * (math.pi / 180.0))


def random_rotate(degrees: Sequence[float], salt: int | None = None) -> Transform:
    """Rotate by an angle in degrees drawn uniformly from ``degrees`` (repeat a value to weight it)."""
    degrees = list(degrees)
    if not degrees:
        raise ParameterError("rotate needs one or more angles in degrees")
    return _Rotate(degrees, salt)


class _ResizeTo(Transform):
    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(f"resize({size[0]}, {size[1]})", 0)
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return tf.image.resize(images, self.size, method="bilinear")


def resize_to(size: tuple[int, int]) -> Transform:
    """Resize to exactly ``size`` (height, width): the last transform before a classifier with a fixed input."""
    return _ResizeTo(size)


def standard_transforms() -> list[Transform]:
    """lucid's ``standard_transforms``: pad 12 (mid-grey), jitter 8, scale 1 + (i - 5) / 50 for i in 0..10,
    rotate -10..10 degrees (0 five times more likely), jitter 4."""
    return [
        pad(12, salt=1),
        jitter(8, salt=2),
        random_scale([1 + (i - 5) / 50 for i in range(11)], salt=3),
        random_rotate(list(range(-10, 11)) + 5 * [0], salt=4),
        jitter(4, salt=5),
    ]


# ------------------------------------------------------------------------------------------- the spec

_ITEM = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$", re.S)
_NAMES = "standard, none, pad(N[, constant|reflect|symmetric]), jitter(N), scale(S, ...), rotate(DEG, ...)"


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def parse_transforms(spec: str | Sequence[str]) -> list[Transform]:
    """``standard``, ``none`` (or empty), or a comma-separated list such as
    ``pad(12), jitter(8), scale(0.95, 1, 1.05), rotate(-5, 0, 5), jitter(4)``; items may include
    ``standard``. Errors name the item and list what is allowed."""
    items = _split_top(spec) if isinstance(spec, str) else list(spec)
    out: list[Transform] = []
    for index, raw in enumerate(items, 1):
        item = raw.strip()
        if not item or item == "none":
            continue
        m = _ITEM.match(item)

        def bad(why: str, item: str = item) -> ParameterError:
            return ParameterError(f"transforms: item {item!r} {why}; allowed: {_NAMES}")

        if not m:
            raise bad("is not NAME or NAME(ARGS)")
        name, argtext = m.group(1), m.group(2)
        args = [a.strip() for a in argtext.split(",")] if argtext and argtext.strip() else []
        salt = 100 + index
        if name == "standard":
            if args:
                raise bad("takes no arguments")
            out += standard_transforms()
            continue
        if name == "pad":
            if not 1 <= len(args) <= 2 or not args[0].isdigit():
                raise bad("needs a width in px, optionally a mode")
            out.append(pad(int(args[0]), args[1] if len(args) > 1 else "constant", salt=salt))
            continue
        if name == "jitter":
            if len(args) != 1 or not args[0].isdigit():
                raise bad("needs one whole number of px")
            out.append(jitter(int(args[0]), salt=salt))
            continue
        if name in ("scale", "rotate"):
            try:
                values = [float(a) for a in args]
            except ValueError:
                raise bad("needs numbers") from None
            if not values or not all(math.isfinite(v) for v in values):
                raise bad("needs one or more finite numbers")
            out.append(random_scale(values, salt=salt) if name == "scale" else random_rotate(values, salt=salt))
            continue
        raise bad("is not a known transform")
    return out
