"""Saving images: float [0, 1] RGB (and alpha) to PNG, JPEG, WebP or TIFF, written atomically.

* Format from the extension (:data:`SAVE_FORMATS`): .png, .jpg/.jpeg, .webp, .tif/.tiff. With ``alpha``,
  PNG/WebP/TIFF are written as RGBA; JPEG cannot store alpha, so the image is composited over white.
* Every write goes through :func:`gradfx.engine.images.atomic.atomic_write`: a temporary file in the
  destination folder, fsynced, then moved into place with ``os.replace``, so a reader never sees a
  half-written file, and a failed write leaves neither a partial output nor a temporary file behind.
* ``protect`` lists paths (the inputs) that must never be written, whatever ``overwrite`` says; a caller that
  lets the user overwrite an input (``--overwrite``) simply does not pass it.
* :func:`check_output_path` makes the same checks before any compute.

NumPy and Pillow only: imported by the CLI before TensorFlow loads.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable

import numpy as np
from PIL import Image

from ..errors import OutputError, ParameterError, one_line
from .arrays import to_uint8
from .atomic import PathLike, atomic_write, check_target, new_tmp, remove, same_file

#: Output extension -> (Pillow format name, can store alpha).
SAVE_FORMATS: dict[str, tuple[str, bool]] = {
    ".png": ("PNG", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".webp": ("WEBP", True),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
}


def check_output_path(
    path: PathLike, *, protect: Iterable[PathLike] = (), overwrite: bool = True, image: bool = True
) -> pathlib.Path:
    """Raise :class:`OutputError` now if :func:`save_image` would refuse ``path``; return it as a Path.

    For commands to call before any compute: a known extension (unless ``image`` is False: a report or
    other non-image file), an existing folder that accepts a new file (tried), not a folder itself, not an
    existing file when ``overwrite`` is False, and none of the ``protect`` paths (compared by resolved real
    path, so ``./a.png``, ``../x/a.png`` and symlinks to an input are all caught).
    """
    target = pathlib.Path(path)
    ext = target.suffix.lower()
    if target.is_dir():  # before the extension: "-o outdir" means a folder, not a file without one
        raise OutputError(f"{target}: is a folder; give a file name for the output, e.g. {target / 'out.png'}")
    if image and ext not in SAVE_FORMATS:
        allowed = ", ".join(SAVE_FORMATS)
        raise OutputError(
            f"{target}: unknown image extension {target.suffix or '(none)'!r}; use one of {allowed}"
        )
    for p in protect:
        if same_file(target, p):
            raise OutputError(
                f"{target}: refusing to write over the input {os.fspath(p)}; choose another output "
                "path, or pass --overwrite to replace the input"
            )
    check_target(target, overwrite)
    remove(new_tmp(target))
    return target


def save_image(
    path: PathLike,
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    overwrite: bool = True,
    protect: Iterable[PathLike] = (),
) -> pathlib.Path:
    """Save float [0, 1] ``rgb`` (H x W x 3, or H x W grey) to ``path`` atomically; return the path.

    The format follows the extension (``SAVE_FORMATS``). ``alpha`` (H x W in [0, 1]) is stored by PNG, WebP
    and TIFF; JPEG composites the image over white. ``quality`` (1-100) applies to JPEG and WebP.
    Raises :class:`OutputError` for an unknown extension, a missing folder, an existing file with
    ``overwrite=False``, or a path in ``protect`` (an input), which is refused whatever ``overwrite`` says.
    """
    target = check_output_path(path, protect=protect, overwrite=overwrite)
    ext = target.suffix.lower()
    if not (1 <= int(quality) <= 100):
        raise ParameterError(f"quality must be between 1 and 100, not {quality!r}")
    fmt, keeps_alpha = SAVE_FORMATS[ext]

    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 4 and alpha is None:
        arr, alpha = arr[:, :, :3], arr[:, :, 3]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"save_image expects an H x W x 3 (or H x W) array, got shape {np.shape(rgb)}")
    pixels = arr if arr.dtype == np.uint8 else to_uint8(arr)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)

    if alpha is not None:
        a = np.asarray(alpha)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.shape != pixels.shape[:2]:
            raise ValueError(f"alpha has shape {a.shape} but the image is {pixels.shape[:2]}")
        a8 = a if a.dtype == np.uint8 else to_uint8(a)
        if keeps_alpha:
            pil = Image.fromarray(np.ascontiguousarray(np.dstack([pixels, a8])))
        else:  # JPEG cannot store alpha: show it the way a viewer would, over white
            af = a8.astype(np.float32)[:, :, None] / 255.0
            over_white = pixels.astype(np.float32) * af + 255.0 * (1.0 - af)
            pil = Image.fromarray(np.rint(over_white).astype(np.uint8))
    else:
        pil = Image.fromarray(np.ascontiguousarray(pixels))

    options: dict = {}
    if fmt == "JPEG":
        options = {"quality": int(quality), "subsampling": 0 if quality >= 90 else 2, "optimize": True}
    elif fmt == "WEBP":
        options = {"quality": int(quality), "method": 4}
    elif fmt == "TIFF":
        options = {"compression": "tiff_lzw"}

    def write(tmp: pathlib.Path) -> None:
        try:
            pil.save(tmp, format=fmt, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise OutputError(
                f"{target}: cannot encode as {fmt} ({one_line(exc)}); check free disk space"
            ) from None

    return atomic_write(target, write, overwrite=overwrite)
