"""Helpers for images as float arrays: the longest-side size (:func:`check_longest`, :func:`longest_shape`),
Lanczos resizing to a longest side (:func:`resize_longest`, within the pixel limit) and float [0, 1] to uint8
(:func:`to_uint8`). NumPy and Pillow only."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..errors import ParameterError
from .pixel_limit import check_pixels


def check_longest(longest: Any, what: str = "the longest side") -> int:
    """``longest`` as an int, or a :class:`ParameterError` naming ``what`` (``--size``, a parameter) when it is
    not a positive whole number of pixels."""
    if isinstance(longest, bool) or not isinstance(longest, (int, np.integer)) or longest < 1:
        raise ParameterError(f"{what} must be a positive whole number of pixels, not {longest!r}; e.g. {what} 512"
                             if what.startswith("--") else
                             f"{what} must be a positive whole number of pixels, not {longest!r}")
    return int(longest)


def longest_shape(h: int, w: int, longest: int) -> tuple[int, int]:
    """(height, width) of an ``h`` x ``w`` image resized so its longest side is ``longest`` (aspect kept, the
    short side rounded, never below 1 pixel): what :func:`resize_longest` makes."""
    scale = longest / max(h, w)
    return (longest if h > w else max(1, round(h * scale))), (longest if w >= h else max(1, round(w * scale)))


def resize_longest(img: np.ndarray, longest: int, *, what: str | None = None) -> np.ndarray:
    """Resize ``img`` (H x W or H x W x C float) so its longest side is exactly ``longest`` pixels.

    Keeps the aspect ratio (:func:`longest_shape`); Lanczos in Pillow's 32-bit float mode, one channel at a
    time; the result is clipped to the input's value range so ringing cannot push [0, 1] data out of range.
    Returns float32. The result's pixel count is checked first (:func:`check_pixels`; ``what`` names the
    request, default ``size N``), so an absurd size fails in a line instead of filling the memory.
    """
    longest = check_longest(longest, what or "size")
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"resize_longest expects an H x W or H x W x C array, got shape {arr.shape}")
    new_h, new_w = longest_shape(*arr.shape[:2], longest)
    check_pixels(new_h, new_w, f"{what or 'size'} {longest}")
    return resize_to(arr, (new_h, new_w))


def resize_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (H x W or H x W x C float) resized to exactly ``size`` (height, width), as :func:`resize_longest`
    resizes (Lanczos, clipped to the input's range); float32."""
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    new_h, new_w = (int(v) for v in size)
    arr = arr.astype(np.float32, copy=False)
    if (new_h, new_w) == (h, w):
        return arr.copy()
    planes = [arr] if arr.ndim == 2 else [arr[:, :, c] for c in range(arr.shape[2])]
    out = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(p)).resize((new_w, new_h), Image.Resampling.LANCZOS),
            dtype=np.float32,
        )
        for p in planes
    ]
    result = out[0] if arr.ndim == 2 else np.stack(out, axis=2)
    if arr.size:
        result = np.clip(result, float(arr.min()), float(arr.max()))
    return np.ascontiguousarray(result, dtype=np.float32)


#: values converted at a time by :func:`to_uint8` (1 MB of float32 per temporary)
_UINT8_CHUNK = 1 << 18


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float [0, 1] (any shape) to uint8: clipped, rounded to nearest (not truncated); NaN becomes 0.

    Converted a chunk at a time, in place in one chunk-sized temporary: the whole-array expression held two
    or three full-size float copies at once (450 MB for a 4096 x 3072 image) just to save it."""
    arr = np.ascontiguousarray(rgb, dtype=np.float32)
    out = np.empty(arr.shape, np.uint8)
    flat, flat_out = arr.reshape(-1), out.reshape(-1)
    for start in range(0, flat.size, _UINT8_CHUNK):
        part = np.nan_to_num(flat[start:start + _UINT8_CHUNK], nan=0.0, posinf=1.0, neginf=0.0)  # a copy
        np.clip(part, 0.0, 1.0, out=part)
        part *= 255.0
        np.rint(part, out=part)
        flat_out[start:start + _UINT8_CHUNK] = part
    return out
