"""Pixels to the engine's float RGB with alpha set aside: every Pillow mode (:func:`pil_to_float`) and NumPy
array layout (:func:`array_to_float`) :func:`gradfx.engine.images.load.load_image` accepts.

* Result: ``rgb`` is float32 ``H x W x 3`` in [0, 1]; transparency is set aside in ``alpha`` (float32
  ``H x W``, or ``None`` when the image has no alpha or it is fully opaque).
* Modes 1, L, LA, La, P (with or without transparency), PA, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr,
  I;16 / I;16B / I;16L / I (16-bit greyscale) and F are accepted. 16-bit data keeps its precision
  (scaled by 65535, not 255). Pillow reads 16-bit *colour* PNGs as 8-bit RGB; that precision is lost
  inside Pillow, before this module sees it.
* Mode ``I`` is taken as 16-bit data (scaled by 65535, clipped); mode ``F`` as [0, 1] data, unless its
  maximum is above 1, in which case it is scaled by 255 (or by 65535 when the maximum exceeds 255).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ImageError


def pil_to_float(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert a loaded PIL image of any supported mode to (float32 HxWx3, float32 HxW or None)."""
    mode = im.mode
    alpha: np.ndarray | None = None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(im).astype(np.float32)
        grey = np.clip(grey, 0.0, 65535.0) / 65535.0
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    elif mode == "F":
        grey = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(grey.max()) if grey.size else 0.0
        if top > 255.0 + 1e-3:
            grey = grey / 65535.0
        elif top > 1.0 + 1e-3:
            grey = grey / 255.0
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[:, :, None], 3, axis=2)
    else:
        if mode in ("1", "L"):
            target = "L"
        elif mode in ("LA", "La"):
            target = "LA"
        elif mode in ("P", "PA"):
            has_alpha = (
                mode == "PA"
                or "transparency" in im.info
                or (im.palette is not None and im.palette.mode == "RGBA")
            )
            target = "RGBA" if has_alpha else "RGB"
        elif mode in ("RGBA", "RGBa"):
            target = "RGBA"
        else:  # RGB, RGBX, CMYK, YCbCr, LAB, HSV ...
            target = "RGB"
        if mode == "L" and "transparency" in im.info:
            target = "LA"
        if mode == "RGB" and "transparency" in im.info:
            target = "RGBA"
        conv = im if im.mode == target else im.convert(target)
        data = np.asarray(conv, dtype=np.float32)
        data /= 255.0  # in place: a second full-size float array only to divide (same values)
        if target == "L":
            rgb = np.repeat(data[:, :, None], 3, axis=2)
        elif target == "LA":
            rgb = np.repeat(data[:, :, :1], 3, axis=2)
            alpha = data[:, :, 1]
        elif target == "RGBA":
            rgb, alpha = data[:, :, :3], data[:, :, 3]
        else:
            rgb = data
    return _finish(rgb, alpha)


def _finish(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
        if alpha.size and float(alpha.min()) >= 1.0:
            alpha = None
    return rgb, alpha


def array_to_float(arr: np.ndarray, shown: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(float32 HxWx3, float32 HxW or None, the layout's mode name) of ``arr`` (``shown`` in errors):
    HxW, HxWx1 (grey), HxWx2 (grey+alpha), HxWx3 (RGB), HxWx4 (RGBA); uint8, uint16, bool or float."""
    shape_help = "expected H x W, H x W x 1, H x W x 3 or H x W x 4"
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 0
    else:
        raise ImageError(f"{shown}: unsupported array shape {arr.shape}; {shape_help}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{shown}: array has no pixels (shape {arr.shape}); {shape_help}")

    kind = arr.dtype
    if kind == np.uint8:
        data = arr.astype(np.float32) / 255.0
        bits = 8
    elif kind == np.uint16:
        data = arr.astype(np.float32) / 65535.0
        bits = 16
    elif kind == np.bool_:
        data = arr.astype(np.float32)
        bits = 1
    elif np.issubdtype(kind, np.floating):
        data = arr.astype(np.float32)
        bits = 32
        if not np.isfinite(data).all():
            raise ImageError(f"{shown}: float array contains NaN or infinity; replace them (np.nan_to_num)")
        lo, hi = float(data.min()), float(data.max())
        if lo < -0.01 or hi > 1.01:
            raise ImageError(
                f"{shown}: float array values span [{lo:.4g}, {hi:.4g}] but must be in [0, 1]; "
                "divide 0-255 data by 255 (or pass it as uint8)"
            )
        data = np.clip(data, 0.0, 1.0)
    else:
        raise ImageError(
            f"{shown}: unsupported array dtype {kind}; pass uint8 (0-255), uint16 (0-65535) or float (0-1)"
        )

    alpha = None
    if channels in (0, 1):
        grey = data if channels == 0 else data[:, :, 0]
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        mode = {1: "1", 8: "L", 16: "I;16", 32: "F"}[bits]
    elif channels == 2:
        rgb = np.repeat(data[:, :, :1], 3, axis=2)
        alpha = data[:, :, 1]
        mode = "LA"
    else:
        rgb = data[:, :, :3]
        alpha = data[:, :, 3] if channels == 4 else None
        mode = "RGBA" if channels == 4 else "RGB"
    rgb, alpha = _finish(rgb, alpha)
    return rgb, alpha, mode
