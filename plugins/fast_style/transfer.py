"""AdaIN's pass (Huang & Belongie 2017), tiled for bounded memory: encode the content, give its relu4_1
features each style's channel means and standard deviations, mix with the content's features by ``alpha``,
decode.

The content's statistics are the whole canvas's (per region with masks), accumulated over the tiles before
any tile is decoded, so a tiled pass transfers what an untiled one does; each tile is encoded and decoded
with a halo of context around the piece it keeps, on the grid of the encoder's three poolings (8 px), so the
tiles meet without a seam. Sizes not divisible by 8 are reflect-padded to the next multiple (split between
both sides) and cropped back, so the output has the content's size and every pooling window is full.

Statistics match the reference PyTorch AdaIN: unbiased variance, ``std = sqrt(var + 1e-5)``. Masks (the
authors' Lua code has them; the PyTorch port dropped them) are soft here: resized to the feature grid by area,
each region's content statistics weighted by its mask, each position mixing the regions' results by their
masks (with the content's own features where the masks do not reach), so region borders blend rather than
cut. TensorFlow is imported when a pass runs.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the encoder's downsampling to relu4_1 (three 2x2 max pools): tiles and padding keep to this grid
GRID = 8
#: context around each tile's kept piece, in pixels (a multiple of GRID): enough that tiles meet without a
#: seam (bench/RESULTS-fast-style.md measures it)
HALO = 64
EPS = 1e-5
#: the most memory the tiles' relu4_1 features may take to be kept between the two passes (8 bytes a pixel:
#: 512 float32 channels per 8 x 8 pixels), rather than encoded again
KEEP_BYTES = 1 << 30


@dataclass(frozen=True)
class Stats:
    """Per-channel mean and standard deviation of relu4_1 features, per region: arrays (regions, channels)."""

    mean: np.ndarray
    std: np.ndarray


class Moments:
    """Weighted sums of features per region, accumulated over tiles (float64): their mean and unbiased std."""

    def __init__(self) -> None:
        self.n: np.ndarray | None = None
        self.s1: np.ndarray | None = None
        self.s2: np.ndarray | None = None

    def add(self, feats: np.ndarray, weights: np.ndarray) -> None:
        """``feats`` (h, w, C) and ``weights`` (regions, h, w) of one piece of the canvas."""
        f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
        m = weights.reshape(weights.shape[0], -1).astype(np.float64)
        n, s1, s2 = m.sum(axis=1), m @ f, m @ (f * f)
        if self.n is None:
            self.n, self.s1, self.s2 = n, s1, s2
        else:
            self.n, self.s1, self.s2 = self.n + n, self.s1 + s1, self.s2 + s2

    def stats(self) -> Stats:
        assert self.n is not None and self.s1 is not None and self.s2 is not None
        n = np.maximum(self.n, 1e-6)[:, None]
        mean = self.s1 / n
        var = np.maximum(self.s2 - n * mean * mean, 0.0) / np.maximum(n - 1.0, 1.0)
        return Stats(mean.astype(np.float32), np.sqrt(var + EPS).astype(np.float32))


def pad_amounts(size: int) -> tuple[int, int]:
    """Padding (before, after) that brings ``size`` up to a multiple of :data:`GRID`, split evenly."""
    total = math.ceil(size / GRID) * GRID - size
    return total // 2, total - total // 2


def pad(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``image`` (H, W, C) reflect-padded to multiples of :data:`GRID`; and (top, bottom, left, right)."""
    (top, bottom), (left, right) = pad_amounts(image.shape[0]), pad_amounts(image.shape[1])
    mode = "reflect" if min(image.shape[:2]) > max(top, bottom, left, right) else "symmetric"
    return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode=mode), (top, bottom, left, right)


def spans(size: int, tile: int) -> list[tuple[int, int]]:
    """The pieces ``[a, b)`` of ``[0, size)`` (a multiple of :data:`GRID`) a pass keeps, each at most about
    ``tile`` long and on the grid; one piece when ``tile`` is 0 or covers it (with its halo)."""
    cells = size // GRID
    if not tile or size <= tile + 2 * HALO:
        return [(0, size)]
    count = math.ceil(size / tile)
    bounds = [round(i * cells / count) * GRID for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@dataclass(frozen=True)
class Tile:
    """A piece of the padded canvas: ``keep`` (y0, y1, x0, x1) is written to the output; ``read`` is it with
    the halo around it (clipped to the canvas), the pixels the networks see."""

    keep: tuple[int, int, int, int]
    read: tuple[int, int, int, int]

    def inner(self) -> tuple[slice, slice]:
        """Where ``keep`` lies in ``read``'s pixels."""
        y0, y1, x0, x1 = self.keep
        return slice(y0 - self.read[0], y1 - self.read[0]), slice(x0 - self.read[2], x1 - self.read[2])

    def cells(self) -> tuple[slice, slice]:
        """Where ``keep`` lies in ``read``'s feature grid."""
        ys, xs = self.inner()
        return slice(ys.start // GRID, ys.stop // GRID), slice(xs.start // GRID, xs.stop // GRID)


def tiles(h: int, w: int, tile: int) -> list[Tile]:
    """The tiles of an (h, w) canvas (multiples of :data:`GRID`), row by row."""
    out = []
    for y0, y1 in spans(h, tile):
        for x0, x1 in spans(w, tile):
            read = (max(0, y0 - HALO), min(h, y1 + HALO), max(0, x0 - HALO), min(w, x1 + HALO))
            out.append(Tile((y0, y1, x0, x1), read))
    return out


class Networks:
    """The encoder (RGB in [0, 1] -> relu4_1 of the normalised VGG19) and the decoder, as traced functions that
    take any size, and the style statistics already computed with them: kept on the networks themselves, so
    they live as long as the engine keeps the networks (one trace per process, a batch's style encoded once)."""

    def __init__(self, encoder: Any, decoder: Any) -> None:
        import tensorflow as tf

        image = tf.TensorSpec((None, None, None, 3), tf.float32)
        feats = tf.TensorSpec((None, None, None, 512), tf.float32)
        self.encode_fn = _kept(encoder, "_gradfx_trace", lambda: tf.function(
            lambda x: encoder(x, training=False)[-1], input_signature=[image]))
        self.decode_fn = _kept(decoder, "_gradfx_trace", lambda: tf.function(
            lambda f: decoder(f, training=False), input_signature=[feats]))
        self.style_cache: OrderedDict[tuple, Stats] = _kept(encoder, "_gradfx_style_stats", OrderedDict)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """relu4_1 of an (H, W, 3) image: (ceil(H/8), ceil(W/8), 512)."""
        return self.encode_fn(np.asarray(image, np.float32)[None]).numpy()[0]

    def decode(self, feats: np.ndarray) -> np.ndarray:
        """An (8h, 8w, 3) image from (h, w, 512) features, not clipped."""
        return self.decode_fn(np.asarray(feats, np.float32)[None]).numpy()[0]


def _kept(model: Any, name: str, make: Callable[[], Any]) -> Any:
    """``model``'s attribute ``name``, made once (set past Keras' attribute tracking: it is not a layer's)."""
    value = model.__dict__.get(name)
    if value is None:
        value = make()
        object.__setattr__(model, name, value)
    return value


def region_grid(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Masks (each (H, W) in [0, 1] on the padded canvas, multiples of :data:`GRID`) as weights on the feature
    grid, each cell the mean of its pixels: (regions, H / 8, W / 8)."""
    h, w = masks[0].shape
    return np.stack([np.asarray(m, np.float32).reshape(h // GRID, GRID, w // GRID, GRID).mean(axis=(1, 3))
                     for m in masks]).clip(0.0, 1.0)


#: style statistics kept with the networks (a batch's or a video's frames share their style)
STYLE_CACHE = 16


def style_stats(nets: Networks, image: np.ndarray, tile: int) -> Stats:
    """The relu4_1 statistics of a style image (over all of it, tile by tile when it is large); the last
    :data:`STYLE_CACHE` are kept, by the image's pixels and the networks, so a batch encodes its style once."""
    image = np.ascontiguousarray(image, np.float32)
    key, cache = (image.shape, hashlib.sha1(image.data).hexdigest(), tile), nets.style_cache
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    padded, _ = pad(image)
    moments = Moments()
    for t in tiles(*padded.shape[:2], tile):
        feats = nets.encode(_read(padded, t))[t.cells()]
        moments.add(feats, np.ones((1, *feats.shape[:2]), np.float32))
    cache[key] = stats = moments.stats()
    while len(cache) > STYLE_CACHE:
        cache.popitem(last=False)
    return stats


def transfer(feats: np.ndarray, content: Stats, styles: Sequence[Stats], weights: Sequence[float],
             regions: np.ndarray | None, alpha: float) -> np.ndarray:
    """The decoder's input for content features ``feats`` (h, w, C).

    Without ``regions`` (masks): ``sum_i w_i AdaIN(feats, style_i)`` with the weights normalised to sum to 1
    (style interpolation). With them ((styles, h, w) weights on this grid): region i's content statistics
    (``content`` has one row per region) to style i's, at strength ``weights[i] / max(weights)``, mixed by the
    masks, the content's features where they do not reach. Then ``alpha`` of that and ``1 - alpha`` of the
    content's features."""
    if regions is None:
        normal = (feats - content.mean[0]) / content.std[0]
        total = float(sum(weights))
        target = sum(w / total * (normal * s.std[0] + s.mean[0]) for w, s in zip(weights, styles, strict=True))
    else:
        top = max(weights)
        target = np.zeros_like(feats)
        for i, (w, s) in enumerate(zip(weights, styles, strict=True)):
            moved = (feats - content.mean[i]) / content.std[i] * s.std[0] + s.mean[0]
            target += regions[i][..., None] * (w / top * moved + (1 - w / top) * feats)
        cover = regions.sum(axis=0)[..., None]
        target = (target + np.maximum(1.0 - cover, 0.0) * feats) / np.maximum(cover, 1.0)
    return alpha * target + (1.0 - alpha) * feats


def stylise(nets: Networks, content: np.ndarray, styles: Sequence[Stats], weights: Sequence[float], *,
            masks: Sequence[np.ndarray] = (), alpha: float = 1.0, tile: int = 0,
            step: Callable[[int, int], bool] | None = None) -> np.ndarray | None:
    """The stylised (H, W, 3) ``content`` in [0, 1] (see :func:`transfer`); ``masks`` (H, W) one per style.
    ``step(done, total)`` after each piece of work returns whether to go on; None when it said stop."""
    padded, (top, bottom, left, right) = pad(content)
    h, w = padded.shape[:2]
    regions = region_grid([pad(m[..., None])[0][..., 0] for m in masks]) if masks else None
    pieces = tiles(h, w, tile)
    # each tile's features are kept for its decoding when they fit in KEEP_BYTES, else encoded again
    keep = sum((t.read[1] - t.read[0]) * (t.read[3] - t.read[2]) for t in pieces) * 8 <= KEEP_BYTES
    total, done = (2 if len(pieces) > 1 else 1) * len(pieces) + (0 if keep else len(pieces)), 0
    moments, kept = Moments(), []
    for t in pieces:  # the content's statistics over the whole canvas, before any tile is decoded
        feats = nets.encode(_read(padded, t))
        inside = feats[t.cells()]
        gy, gx = _on_grid(t.keep)
        moments.add(inside, np.ones((1, *inside.shape[:2]), np.float32) if regions is None else regions[:, gy, gx])
        kept.append(feats if keep else None)
        if len(pieces) > 1:
            done += 1
            if step is not None and not step(done, total):
                return None
    stats = moments.stats()
    out = np.empty((h, w, 3), np.float32)
    for t, feats in zip(pieces, kept, strict=True):
        if feats is None:
            feats = nets.encode(_read(padded, t))
            done += 1
        gy, gx = _on_grid(t.read)
        mixed = transfer(feats, stats, styles, weights, None if regions is None else regions[:, gy, gx], alpha)
        ky0, ky1, kx0, kx1 = t.keep
        out[ky0:ky1, kx0:kx1] = nets.decode(mixed)[t.inner()]
        done += 1
        if step is not None and not step(done, total):
            return None
    return np.clip(out[top:h - bottom, left:w - right], 0.0, 1.0)


def _read(canvas: np.ndarray, t: Tile) -> np.ndarray:
    y0, y1, x0, x1 = t.read
    return canvas[y0:y1, x0:x1]


def _on_grid(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """Where a box of the canvas (y0, y1, x0, x1) lies on its feature grid."""
    y0, y1, x0, x1 = box
    return slice(y0 // GRID, y1 // GRID), slice(x0 // GRID, x1 // GRID)
