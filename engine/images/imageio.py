"""Image input and output for gradfx: load anything Pillow reads into float RGB, save atomically.

This module is imported by the CLI before TensorFlow loads, so it uses NumPy and Pillow only.

Loading (:func:`load_image`)
    * Sources: a path, a ``PIL.Image.Image``, a NumPy array or an existing :class:`LoadedImage`.
    * Result: ``rgb`` is float32 ``H x W x 3`` in [0, 1]; transparency is set aside in ``alpha``
      (float32 ``H x W``, or ``None`` when the image has no alpha or it is fully opaque), so the
      engine only ever optimises colour and :func:`save_image` can put the alpha back.
    * EXIF orientation is applied (a phone photo comes out the way it is shown).
    * Modes 1, L, LA, La, P (with or without transparency), PA, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr,
      I;16 / I;16B / I;16L / I (16-bit greyscale) and F are accepted. 16-bit data keeps its precision
      (scaled by 65535, not 255). Pillow reads 16-bit *colour* PNGs as 8-bit RGB; that precision is lost
      inside Pillow, before this module sees it.
    * Mode ``I`` is taken as 16-bit data (scaled by 65535, clipped); mode ``F`` as [0, 1] data, unless its
      maximum is above 1, in which case it is scaled by 255 (or by 65535 when the maximum exceeds 255).
    * Animated GIF / WebP / multi-page TIFF: the first frame only.
    * Only raster formats are opened (PNG, JPEG/MPO, WebP, AVIF, TIFF, GIF, BMP, PPM, TGA, QOI); EPS and
      other formats that would start external programs or rarely-used decoders are refused.
    * ``max_size`` resizes so the longest side is exactly ``max_size`` pixels, up or down: the engine
      decides working sizes, this module only obeys.

Safety
    * Decompression bombs: images with more pixels than the limit are refused before decoding. The limit
      is, in order of precedence, the ``max_pixels`` argument, :func:`set_max_pixels`, the environment
      variable ``GRADFX_MAX_PIXELS``, and the default of 178,956,970 pixels (Pillow's own error
      threshold). Pillow's ``DecompressionBombWarning`` is treated as an error as well.
    * Truncated files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is forced off while loading).
    * Every problem a file can cause becomes an :class:`~gradfx.engine.errors.ImageError` whose message is
      one line naming the file, the reason and a fix; no Pillow traceback leaks out.

Saving (:func:`save_image`, written through :func:`gradfx.engine.atomic.atomic_write`)
    * Format from the extension: .png, .jpg/.jpeg, .webp, .tif/.tiff. With ``alpha``, PNG/WebP/TIFF are
      written as RGBA; JPEG cannot store alpha, so the image is composited over white.
    * Every write goes to a temporary file in the destination folder, is fsynced and then moved into
      place with ``os.replace``: a reader never sees a half-written file, and a failed write leaves
      neither a partial output nor a temporary file behind.
    * ``protect`` lists paths (the inputs) that must never be written, whatever ``overwrite`` says; a
      caller that lets the user overwrite an input (``--overwrite``) simply does not pass it.
"""

from __future__ import annotations

import os
import pathlib
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ImageError, OutputError, ParameterError, one_line
from .atomic import PathLike, atomic_write, check_target, new_tmp, output_folder, remove, same_file

# atomic_write and output_folder live in .atomic; imported here too because callers (the TUI's saving) use
# them with save_image
__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "SAVE_FORMATS",
    "LoadedImage",
    "atomic_write",
    "check_output_path",
    "output_folder",
    "get_max_pixels",
    "load_image",
    "check_longest",
    "check_pixels",
    "longest_shape",
    "resize_longest",
    "save_image",
    "set_max_pixels",
    "to_uint8",
]


#: Pillow's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``' default): about 179 megapixels.
DEFAULT_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)
#: Environment variable that sets the decompression-bomb limit (a pixel count).
MAX_PIXELS_ENV = "GRADFX_MAX_PIXELS"

#: Output extension -> (Pillow format name, can store alpha).
SAVE_FORMATS: dict[str, tuple[str, bool]] = {
    ".png": ("PNG", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".webp": ("WEBP", True),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
}

# Formats load_image opens. Raster formats only: EPS would run Ghostscript on untrusted input.
_OPEN_FORMATS = (
    "PNG",
    "JPEG",
    "MPO",
    "WEBP",
    "AVIF",
    "HEIF",
    "TIFF",
    "GIF",
    "BMP",
    "DIB",
    "PPM",
    "TGA",
    "QOI",
)
_FORMAT_NAMES = "PNG, JPEG, WebP, TIFF, GIF, BMP"

# Everything Pillow's decoders are known to raise on hostile input (see Pillow's own fuzzers).
_PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
    OverflowError,
    ZeroDivisionError,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

_max_pixels_override: int | None = None
# Image.open/load read and temporarily change Pillow's process-wide settings (MAX_IMAGE_PIXELS,
# LOAD_TRUNCATED_IMAGES, the warnings filter); the lock keeps concurrent loads from seeing each other's.
_pillow_lock = threading.Lock()


@dataclass
class LoadedImage:
    """An image as the engine sees it: float RGB, with any transparency set aside."""

    rgb: np.ndarray  #: float32, H x W x 3, in [0, 1]
    alpha: np.ndarray | None  #: float32, H x W, in [0, 1]; None when opaque
    source: str  #: path, or "<array>" / "<PIL image>"; used in messages
    mode: str  #: the original PIL mode ("RGB", "I;16", "CMYK", "P"...) or the array's layout

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as Pillow counts them."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# --------------------------------------------------------------------------------------------------
# Decompression-bomb limit


def set_max_pixels(n: int | None) -> int | None:
    """Set the largest image (width x height) :func:`load_image` accepts; return the previous setting.

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


def _bomb_message(source: str, pixels: int | None, limit: int, size: tuple[int, int] | None = None) -> str:
    what = (
        f"{size[0]}x{size[1]} = {pixels:,} pixels"
        if size and pixels
        else (f"{pixels:,} pixels" if pixels else "too many pixels")
    )
    need = pixels if pixels else 2 * limit
    return (
        f"{source}: image is too large ({what}; the limit is {limit:,}, a guard against decompression "
        f"bombs); if the file is trusted, raise the limit with {MAX_PIXELS_ENV}={need} "
        f"or gradfx.engine.imageio.set_max_pixels({need})"
    )


# --------------------------------------------------------------------------------------------------
# Loading


def load_image(
    src: PathLike | Image.Image | np.ndarray | LoadedImage,
    *,
    max_size: int | None = None,
    max_pixels: int | None = None,
) -> LoadedImage:
    """Load ``src`` as float32 RGB in [0, 1] with alpha set aside (see the module docstring).

    ``max_size`` resizes to exactly that longest side (up or down). ``max_pixels`` overrides the
    decompression-bomb limit for this call. Raises :class:`ImageError` for anything wrong with the image.
    """
    if max_size is not None:
        check_longest(max_size, "--size")
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise ParameterError(f"max_pixels must be a positive whole number of pixels, not {max_pixels!r}")

    if isinstance(src, LoadedImage):
        loaded = LoadedImage(src.rgb, src.alpha, src.source, src.mode)
    elif isinstance(src, np.ndarray):
        loaded = _from_array(src, "<array>")
    elif isinstance(src, Image.Image):
        name = getattr(src, "filename", "") or "<PIL image>"
        loaded = _decode(src, str(name), max_pixels or get_max_pixels())
    elif isinstance(src, (str, os.PathLike)):
        loaded = _from_path(src, max_pixels or get_max_pixels())
    else:
        raise ImageError(
            f"cannot load an image from a {type(src).__name__}; pass a file path, a PIL image "
            "or a NumPy array"
        )

    if max_size is not None and max(loaded.size) != max_size:
        loaded.rgb = resize_longest(loaded.rgb, max_size, what="--size")
        if loaded.alpha is not None:
            loaded.alpha = resize_longest(loaded.alpha, max_size, what="--size")
    return loaded


def check_image_file(src: PathLike) -> None:
    """The checks of :func:`load_image` that need no pixels, from the file and its header: it is there, a
    readable file, an image of a known format (not text, a Git LFS pointer or garbage) within the pixel limit.
    Image parameters get them before any compute; truncated or corrupt pixel data is found when it decodes."""
    _from_path(src, get_max_pixels(), header_only=True)


def _from_path(src: PathLike, limit: int, header_only: bool = False) -> LoadedImage | None:
    path = os.fspath(src)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    shown = path
    if "\x00" in path:  # os.stat would raise a bare ValueError ("embedded null byte")
        raise ImageError(f"{path!r}: a file path cannot hold a null byte (\\x00); check the path")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _access_error(shown, path, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{shown}: is a folder, not an image file; name an image file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(
            f"{shown}: is not a regular file (a device or pipe?); save the image to a file first"
        )
    if st.st_size == 0:
        raise ImageError(f"{shown}: file is empty (0 bytes); re-export or re-download the image")

    try:
        fp = open(path, "rb")  # closed by the `with` below
    except OSError as exc:
        raise _access_error(shown, path, exc) from None
    with fp:
        try:
            head = fp.read(64)
            fp.seek(0)
        except OSError as exc:
            raise ImageError(
                f"{shown}: cannot read ({one_line(exc)}); check the file and the disk"
            ) from None
        return _decode(fp, shown, limit, head=head, header_only=header_only)


def _decode(fp_or_image, shown: str, limit: int, head: bytes = b"", header_only: bool = False) -> LoadedImage | None:
    """Open (if a file object), load, orient and convert, turning every Pillow failure into ImageError; with
    ``header_only``, open and check the size, and return None."""
    with _pillow_lock, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved_limit, saved_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = limit, False
        try:
            if isinstance(fp_or_image, Image.Image):
                im = fp_or_image
            else:
                # Header only; the size check just below gives a better message than Pillow's.
                Image.MAX_IMAGE_PIXELS = None
                im = Image.open(fp_or_image, formats=_open_formats())
                Image.MAX_IMAGE_PIXELS = limit  # frames (GIF, MPO) are checked again while loading
            w, h = im.size
            if w * h > limit:
                raise ImageError(_bomb_message(shown, w * h, limit, (w, h)))
            if w < 1 or h < 1:
                raise ImageError(f"{shown}: image has no pixels ({w}x{h}); re-export the image")
            if header_only:
                return None
            mode = im.mode
            im.load()  # inside the try: this is where truncation and corrupt data show up
            im = _oriented(im, shown)
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(f"{shown}: {_unidentified_reason(head, shown)}") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            m = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageError(_bomb_message(shown, int(m.group(1)) if m else None, limit)) from None
        except MemoryError:
            raise ImageError(
                f"{shown}: not enough memory to decode this image; use a smaller image or free memory"
            ) from None
        except PermissionError:
            raise ImageError(f"{shown}: permission denied; check the permissions of the file") from None
        except _PILLOW_ERRORS as exc:
            raise ImageError(
                f"{shown}: image data is truncated or corrupt ({one_line(exc)}); "
                "re-export or re-download the image"
            ) from None
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved_limit, saved_truncated
    try:
        rgb, alpha = _pil_to_float(im)
    except MemoryError:
        raise ImageError(f"{shown}: not enough memory to convert this image; use a smaller image") from None
    except (ValueError, OSError) as exc:  # Pillow has no conversion from this mode
        raise ImageError(
            f"{shown}: unsupported image mode {im.mode!r} ({one_line(exc)}); save it as 8-bit RGB or RGBA"
        ) from None
    return LoadedImage(rgb, alpha, shown, mode)


def _open_formats() -> list[str]:
    """The allowed formats that this Pillow build registers (Image.open rejects unknown names)."""
    Image.init()
    return [f for f in _OPEN_FORMATS if f in Image.OPEN]


def _oriented(im: Image.Image, shown: str) -> Image.Image:
    """Apply EXIF orientation; a broken EXIF block only costs the rotation, not the image."""
    try:
        return ImageOps.exif_transpose(im)
    except _PILLOW_ERRORS as exc:
        warnings.warn(
            f"{shown}: unreadable EXIF orientation ({one_line(exc)}); using the image as stored",
            stacklevel=4,
        )
        return im


def _pil_to_float(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
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


def _from_array(arr: np.ndarray, shown: str) -> LoadedImage:
    """HxW, HxWx1 (grey), HxWx2 (grey+alpha), HxWx3 (RGB), HxWx4 (RGBA); uint8, uint16, bool or float."""
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
    return LoadedImage(rgb, alpha, shown, mode)


def _unidentified_reason(head: bytes, shown: str = "") -> str:
    if head.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer, not the image; run `git lfs pull` to fetch the real file"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return (
            "is an HTML/XML/SVG text file, not a raster image (a failed download?); "
            f"download or export it again as {_FORMAT_NAMES}"
        )
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"is a text file, not an image; use a {_FORMAT_NAMES} file"
    suffix = os.path.splitext(shown)[1].lower()
    named = Image.registered_extensions().get(suffix) if suffix else None
    if named in _OPEN_FORMATS:  # x.png of random bytes: "use a PNG file" would puzzle
        return (f"not a recognised image format, although named {suffix} (corrupt, or another kind of file); "
                "re-export or re-download it")
    return f"not a recognised image format; use a {_FORMAT_NAMES} file"


def _access_error(shown: str, path: str, exc: OSError) -> ImageError:
    """The one-line error for a file that cannot be reached or opened (stat and open share it)."""
    if isinstance(exc, FileNotFoundError):
        return ImageError(f"{shown}: file not found{_nearby(path)}; check the path")
    if isinstance(exc, PermissionError):
        return ImageError(f"{shown}: permission denied; check the permissions of the file and its folders")
    return ImageError(f"{shown}: cannot read ({one_line(exc)}); check the path")


def _nearby(path: str) -> str:
    from ..errors import suggest

    folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return " (its folder does not exist either)" if folder and not os.path.isdir(folder) else ""
    return suggest(name, entries)


# --------------------------------------------------------------------------------------------------
# Array helpers


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
    h, w = arr.shape[:2]
    new_h, new_w = longest_shape(h, w, longest)
    check_pixels(new_h, new_w, f"{what or 'size'} {longest}")
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


# --------------------------------------------------------------------------------------------------
# Saving


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
