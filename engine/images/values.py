"""The values of image parameters: a path, or an image held in memory (a NumPy array, a PIL image, a
:class:`~gradfx.engine.images.load.LoadedImage`) that a Python caller passed where an image goes.

A value is parsed once (:func:`image_value`, when parameters resolve): a path stays text, to be checked,
resolved and loaded like any file; an image held in memory becomes a ``LoadedImage`` at once, so a bad array
fails before any compute. Where values become text (reports, checkpoints, a batch's settings, errors) an image
is described, never printed (:func:`described`, :func:`shown`). Pillow is imported only for values that are not
text, so parsing text stays as cheap as before.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ImageError


class NotAnImage(ValueError):
    """A value of an image parameter that is neither a path nor an image held in memory."""


def is_image_object(value: Any) -> bool:
    """Whether ``value`` is an image held in memory: a NumPy array, a PIL image or a ``LoadedImage`` (told
    apart without importing Pillow)."""
    return (hasattr(value, "shape") and hasattr(value, "dtype")) or (hasattr(value, "rgb") and hasattr(
        value, "source")) or type(value).__module__.startswith("PIL.")


def image_value(value: Any, name: str, where: str = "") -> Any:
    """One image of image parameter ``name``: a path (text, stripped; a ``Path`` as text) or an image held in
    memory as a :class:`~gradfx.engine.LoadedImage`, converted once. Raises :class:`NotAnImage` for any other
    value, and an :class:`ImageError` naming the parameter (never showing the pixels) for an array or PIL
    image that is not an image gradfx reads."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("empty path")
        return value.strip()
    if not is_image_object(value):
        raise NotAnImage()
    from .load import LoadedImage, load_image

    if isinstance(value, LoadedImage):
        return value
    try:
        return load_image(value)
    except ImageError as exc:
        loc = f"{where}: " if where else ""
        raise ImageError(f"{loc}parameter {name!r}: {exc}") from None


def described(value: Any) -> Any:
    """An image parameter's value with each image held in memory replaced by its description
    (:func:`~gradfx.engine.images.load.describe`: ``"<array 64x48 #1a2b3c4d>"``); paths unchanged."""
    if isinstance(value, (str, int, float, bool)):
        return value
    from .load import LoadedImage, describe

    if isinstance(value, LoadedImage):
        return describe(value)
    if isinstance(value, (list, tuple)):
        return type(value)(describe(v) if isinstance(v, LoadedImage) else v for v in value)
    return value


def shown(value: Any) -> str:
    """``value`` as an error message shows it: an array or a PIL image by its shape (never its pixels),
    anything else by its ``repr``, cut to 80 characters."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        return f"<array of shape {shape}, {dtype}>"
    if type(value).__module__.startswith("PIL.") and hasattr(value, "size") and hasattr(value, "mode"):
        return f"<PIL image {value.size[0]}x{value.size[1]}, mode {value.mode}>"
    if hasattr(value, "rgb") and hasattr(value, "source"):  # a LoadedImage
        return f"<image {value.size[0]}x{value.size[1]} from {value.source}>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["NotAnImage", "described", "image_value", "is_image_object", "shown"]
