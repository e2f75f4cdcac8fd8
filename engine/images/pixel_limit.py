"""The pixel limit: the one guard against decompression bombs and absurd sizes, for images gradfx decodes
(:func:`gradfx.engine.images.load.load_image` refuses them before decoding) and images it is asked to make
(:func:`check_pixels`: ``--size``, an effect's ``size``).

The limit is, in order of precedence, a ``max_pixels`` argument (of ``load_image``), :func:`set_max_pixels`,
the environment variable ``GRADFX_MAX_PIXELS``, and the default of 178,956,970 pixels (Pillow's own error
threshold). Standard library only.
"""

from __future__ import annotations

import os

from ..errors import ParameterError

#: Pillow's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``' default): about 179 megapixels.
DEFAULT_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)
#: Environment variable that sets the decompression-bomb limit (a pixel count).
MAX_PIXELS_ENV = "GRADFX_MAX_PIXELS"

_max_pixels_override: int | None = None


def set_max_pixels(n: int | None) -> int | None:
    """Set the largest image (width x height) gradfx decodes or makes; return the previous setting.

    ``None`` goes back to the default: ``$GRADFX_MAX_PIXELS`` if set, else 178,956,970 pixels.
    """
    global _max_pixels_override
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"max_pixels must be a positive whole number of pixels, not {n!r}")
    previous = _max_pixels_override
    _max_pixels_override = n
    return previous


def get_max_pixels() -> int:
    """The decompression-bomb limit in force: :func:`set_max_pixels`, else the env var, else the default."""
    if _max_pixels_override is not None:
        return _max_pixels_override
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "").replace(",", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw)) if ("e" in raw.lower() or "." in raw) else int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ParameterError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive pixel count; "
            f"set it to e.g. 400000000 or unset it for the default ({DEFAULT_MAX_PIXELS})"
        )
    return value


def check_pixels(h: int, w: int, what: str) -> None:
    """The one guard on the size of an image gradfx is asked to *make* (``--size``, an effect's ``size``): at
    most the decompression-bomb limit a decoded input gets (:func:`get_max_pixels`), checked before a pixel of
    it is allocated. ``what`` names the request in the error (e.g. ``--size 100000``)."""
    limit = get_max_pixels()
    if h * w > limit:
        fits = int((limit * max(h, w) / min(h, w)) ** 0.5)
        raise ParameterError(
            f"{what} asks for a {w}x{h} image ({w * h:,} pixels), more than the limit of {limit:,} pixels "
            f"({MAX_PIXELS_ENV}); use a size of at most {fits} for this image, or raise {MAX_PIXELS_ENV} if the "
            "machine has the memory")


def bomb_message(source: str, pixels: int | None, limit: int, size: tuple[int, int] | None = None) -> str:
    """The one-line error for an image over ``limit`` pixels: what it is, the limit, and how to raise it."""
    what = (
        f"{size[0]}x{size[1]} = {pixels:,} pixels"
        if size and pixels
        else (f"{pixels:,} pixels" if pixels else "too many pixels")
    )
    need = pixels if pixels else 2 * limit
    return (
        f"{source}: image is too large ({what}; the limit is {limit:,}, a guard against decompression "
        f"bombs); if the file is trusted, raise the limit with {MAX_PIXELS_ENV}={need} "
        f"or gradfx.engine.images.pixel_limit.set_max_pixels({need})"
    )
