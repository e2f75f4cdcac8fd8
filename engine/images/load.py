"""Loading images: anything Pillow reads (or an array) into the engine's float RGB, with alpha set aside.

This module is imported by the CLI before TensorFlow loads, so it uses NumPy and Pillow only.

:func:`load_image`
    * Sources: a path, a ``PIL.Image.Image``, a NumPy array or an existing :class:`LoadedImage`.
    * Result: float32 RGB in [0, 1] and alpha set aside (:mod:`.convert` lists the modes and layouts), so
      the engine only ever optimises colour and :func:`gradfx.engine.images.save.save_image` can put the
      alpha back.
    * EXIF orientation is applied (a phone photo comes out the way it is shown).
    * Animated GIF / WebP / multi-page TIFF: the first frame only.
    * Only raster formats are opened (PNG, JPEG/MPO, WebP, AVIF, TIFF, GIF, BMP, PPM, TGA, QOI); EPS and
      other formats that would start external programs or rarely-used decoders are refused.
    * ``longest_side`` resizes so the longest side is exactly ``longest_side`` pixels, up or down: the engine
      decides working sizes, this module only obeys.

Safety
    * Decompression bombs: images with more pixels than the limit (:mod:`.pixel_limit`) are refused before
      decoding. Pillow's ``DecompressionBombWarning`` is treated as an error as well.
    * Truncated files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is forced off while loading).
    * Every problem a file can cause becomes an :class:`~gradfx.engine.errors.ImageError` whose message is
      one line naming the file, the reason and a fix; no Pillow traceback leaks out.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ImageError, ParameterError, one_line
from .arrays import check_longest, longest_shape, resize_longest
from .atomic import PathLike
from .convert import array_to_float, pil_to_float
from .pixel_limit import bomb_message, check_pixels, get_max_pixels

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

# Image.open/load read and temporarily change Pillow's process-wide settings (MAX_IMAGE_PIXELS,
# LOAD_TRUNCATED_IMAGES, the warnings filter); the lock keeps concurrent loads from seeing each other's.
_pillow_lock = threading.Lock()


@dataclass(eq=False)  # compared by identity: comparing two images' pixels is never what `==` should mean
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


def load_image(
    src: PathLike | Image.Image | np.ndarray | LoadedImage,
    *,
    longest_side: int | None = None,
    max_pixels: int | None = None,
) -> LoadedImage:
    """Load ``src`` as float32 RGB in [0, 1] with alpha set aside (see the module docstring).

    ``longest_side`` resizes to exactly that longest side (up or down). ``max_pixels`` overrides the
    decompression-bomb limit for this call. Raises :class:`ImageError` for anything wrong with the image.
    """
    if longest_side is not None:
        check_longest(longest_side, "--size")
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise ParameterError(f"max_pixels must be a positive whole number of pixels, not {max_pixels!r}")

    if isinstance(src, LoadedImage):
        loaded = LoadedImage(src.rgb, src.alpha, src.source, src.mode)
    elif isinstance(src, np.ndarray):
        rgb, alpha, mode = array_to_float(src, "<array>")
        loaded = LoadedImage(rgb, alpha, "<array>", mode)
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

    if longest_side is not None and max(loaded.size) != longest_side:
        loaded.rgb = resize_longest(loaded.rgb, longest_side, what="--size")
        if loaded.alpha is not None:
            loaded.alpha = resize_longest(loaded.alpha, longest_side, what="--size")
    return loaded


def describe(image: LoadedImage) -> str:
    """How an image held in memory is recorded where only text goes (run reports, checkpoints' ``run.json``,
    a batch's settings): ``"<array 64x48 #1a2b3c4d>"`` -- what it came from (``array``, ``PIL image``, or
    ``image from NAME`` for a file loaded beforehand), its width x height, and the first 8 hex digits of the
    sha256 of its pixels, so two different images are never recorded alike."""
    digest = hashlib.sha256(np.ascontiguousarray(image.rgb, np.float32).tobytes())
    if image.alpha is not None:
        digest.update(np.ascontiguousarray(image.alpha, np.float32).tobytes())
    what = image.source[1:-1] if image.source.startswith("<") and image.source.endswith(">") else (
        f"image from {image.source}")
    return f"<{what} {image.size[0]}x{image.size[1]} #{digest.hexdigest()[:8]}>"


def check_longest_side(src: PathLike | Image.Image | np.ndarray | LoadedImage, longest_side: int) -> None:
    """``--size``'s pixel guard from what the image's header says (no pixels decoded): a plan checks it before
    it fetches a network, so ``--size 100000`` fails in a line, not after a download. An image that cannot be
    read is left for :func:`load_image` to report, in its place among a plan's checks."""
    if isinstance(src, LoadedImage):
        h, w = src.rgb.shape[:2]
    elif isinstance(src, np.ndarray) and src.ndim >= 2:
        h, w = src.shape[:2]
    elif isinstance(src, Image.Image):
        w, h = src.size
    elif isinstance(src, (str, os.PathLike)):
        try:
            check_image_file(src)
            with Image.open(os.fspath(src)) as im:
                w, h = im.size
        except (ImageError, OSError, UnidentifiedImageError):
            return
    else:
        return
    check_pixels(*longest_shape(int(h), int(w), longest_side), f"--size {longest_side}")


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
                raise ImageError(bomb_message(shown, w * h, limit, (w, h)))
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
            raise ImageError(bomb_message(shown, int(m.group(1)) if m else None, limit)) from None
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
        rgb, alpha = pil_to_float(im)
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
