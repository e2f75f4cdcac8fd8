"""Tests for loading and saving images (gradfx.engine.images: load, convert, pixel_limit, arrays, save): every
mode in and out, hostile files, bombs, atomic and safe saving.

All images are generated here, in tmp_path; no binary fixtures are committed.
"""

from __future__ import annotations

import io
import os
import random
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gradfx.engine.errors import ImageError, OutputError, ParameterError
from gradfx.engine.images import atomic
from gradfx.engine.images import load as loading
from gradfx.engine.images.arrays import resize_longest, to_uint8
from gradfx.engine.images.atomic import atomic_write
from gradfx.engine.images.load import LoadedImage, check_image_file, load_image
from gradfx.engine.images.pixel_limit import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    get_max_pixels,
    set_max_pixels,
)
from gradfx.engine.images.save import check_output_path, save_image

W, H = 24, 16  # deliberately not square, so a transposed result is visible


# ----------------------------------------------------------------------------------------------
# helpers and fixtures


@pytest.fixture(autouse=True)
def _default_pixel_limit(monkeypatch):
    """Every test starts from the default limit and leaves the process-wide setting as it found it."""
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    previous = set_max_pixels(None)
    pillow_limit = Image.MAX_IMAGE_PIXELS
    yield
    set_max_pixels(previous)
    assert Image.MAX_IMAGE_PIXELS == pillow_limit, "load_image must restore Pillow's global limit"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def rgb8(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    return rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def grey16(w: int = W, h: int = H) -> np.ndarray:
    # odd values, none a multiple of 257, so 8-bit storage could not represent them
    return (np.arange(w * h, dtype=np.uint32).reshape(h, w) * 170 + 1001).astype(np.uint16)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose IHDR claims width x height RGB pixels (the data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def encoded(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def exif_jpeg(orientation: int = 6) -> bytes:
    """W x H JPEG, left half red and right half blue, whose EXIF says 'rotate 90 degrees clockwise'."""
    a = np.zeros((H, W, 3), np.uint8)
    a[:, : W // 2] = (255, 0, 0)
    a[:, W // 2 :] = (0, 0, 255)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    return encoded(im, "JPEG", exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    red = Image.new("RGB", (W, H), (255, 0, 0))
    blue = Image.new("RGB", (W, H), (0, 0, 255))
    return encoded(red, "GIF", save_all=True, append_images=[blue], duration=50, loop=0)


def assert_one_line_image_error(excinfo: pytest.ExceptionInfo, name: str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, ImageError)
    assert "\n" not in msg, msg
    assert name in msg, msg
    return msg


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# ----------------------------------------------------------------------------------------------
# modes: load from file and from PIL, values preserved, then save_image -> reload


def _mode_cases():
    a = rgb8(1)
    alpha = rng(2).integers(0, 256, size=(H, W), dtype=np.uint8)
    g16 = grey16()
    p = Image.fromarray(a).quantize(colors=16)
    p_transparent = p.copy()
    p_transparent.info["transparency"] = 3
    return {
        "1": (Image.fromarray(a[:, :, 0] > 127), "png"),
        "L": (Image.fromarray(a[:, :, 0]), "png"),
        "LA": (Image.fromarray(np.dstack([a[:, :, 0], alpha])), "png"),  # via RGBA below
        "P": (p, "png"),
        "P-transparency": (p_transparent, "png"),
        "RGB": (Image.fromarray(a), "png"),
        "RGBA": (Image.fromarray(np.dstack([a, alpha])), "png"),
        "CMYK": (Image.fromarray(a).convert("CMYK"), "tif"),
        "CMYK-jpeg": (Image.fromarray(a).convert("CMYK"), "jpg"),
        "I;16": (Image.fromarray(g16), "png"),
        "I;16B": (Image.frombytes("I;16B", (W, H), g16.astype(">u2").tobytes()), "tif"),
        "I": (Image.fromarray(g16.astype(np.int32)), "tif"),
        "F": (Image.fromarray(g16.astype(np.float32) / 65535.0), "tif"),
    }


def _expected(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Reference conversion written independently of the module: float RGB (and alpha) of a PIL image."""
    if im.mode in ("I;16", "I;16B", "I"):
        g = np.asarray(im).astype(np.float64) / 65535.0
        return np.repeat(g[:, :, None], 3, axis=2), None
    if im.mode == "F":
        g = np.asarray(im).astype(np.float64)
        return np.repeat(g[:, :, None], 3, axis=2), None
    has_alpha = im.mode in ("LA", "RGBA") or "transparency" in im.info
    ref = np.asarray(im.convert("RGBA" if has_alpha else "RGB")).astype(np.float64) / 255.0
    return ref[:, :, :3], (ref[:, :, 3] if has_alpha else None)


@pytest.mark.parametrize("case", list(_mode_cases()))
def test_every_mode_round_trips_through_files_and_save(case, tmp_path):
    im, ext = _mode_cases()[case]
    if case == "LA":
        im = im.convert("LA") if im.mode != "LA" else im
        im = Image.fromarray(np.asarray(im))  # H x W x 2 uint8 -> "LA"
        assert im.mode == "LA"
    path = tmp_path / f"in.{ext}"
    im.save(path)
    on_disk = Image.open(path)
    on_disk.load()
    want_rgb, want_alpha = _expected(on_disk)  # what Pillow itself reads back (JPEG is lossy)

    got = load_image(path)
    assert got.rgb.dtype == np.float32 and got.rgb.shape == (H, W, 3)
    assert got.size == (W, H)
    assert got.mode == on_disk.mode
    assert got.source == str(path)
    assert 0.0 <= got.rgb.min() and got.rgb.max() <= 1.0
    np.testing.assert_allclose(got.rgb, want_rgb, atol=1.5 / 65535 if ext != "jpg" else 1 / 255)
    if want_alpha is None:
        assert got.alpha is None
    else:
        assert got.alpha is not None and got.alpha.dtype == np.float32 and got.alpha.shape == (H, W)
        np.testing.assert_allclose(got.alpha, want_alpha, atol=1e-6)

    # the same image handed over as a PIL object gives the same pixels
    from_pil = load_image(Image.open(path))
    np.testing.assert_array_equal(from_pil.rgb, got.rgb)

    # and save_image puts colour and alpha back (8-bit PNG: within half a level)
    out = save_image(tmp_path / "out.png", got.rgb, alpha=got.alpha)
    back = load_image(out)
    np.testing.assert_allclose(back.rgb, got.rgb, atol=0.5 / 255 + 1e-6)
    if got.alpha is None:
        assert back.alpha is None
    else:
        assert Image.open(out).mode == "RGBA"
        np.testing.assert_allclose(back.alpha, got.alpha, atol=0.5 / 255 + 1e-6)


def test_sixteen_bit_precision_survives(tmp_path):
    g = grey16()
    Image.fromarray(g).save(tmp_path / "g16.png")
    got = load_image(tmp_path / "g16.png")
    assert got.mode == "I;16"
    np.testing.assert_allclose(got.rgb[:, :, 0], g / 65535.0, atol=1e-7)
    # adjacent 16-bit levels stay distinct: 8-bit (x/255) storage could not do this
    Image.fromarray(np.array([[1000, 1001]], np.uint16)).save(tmp_path / "two.png")
    two = load_image(tmp_path / "two.png").rgb[0, :, 0]
    assert abs(float(two[1] - two[0]) - 1 / 65535) < 1e-7
    # uint16 arrays too
    arr = load_image(np.array([[1000, 1001]], np.uint16)).rgb[0, :, 0]
    assert abs(float(arr[1] - arr[0]) - 1 / 65535) < 1e-7


def test_exif_orientation_is_applied(tmp_path):
    path = write(tmp_path, "phone.jpg", exif_jpeg(6))
    assert Image.open(path).size == (W, H)
    got = load_image(path)
    assert got.size == (H, W)  # rotated a quarter turn
    top, bottom = got.rgb[: W // 2 - 2].mean(axis=(0, 1)), got.rgb[W // 2 + 2 :].mean(axis=(0, 1))
    assert top[0] > 0.8 and top[2] < 0.2, "90 degrees clockwise puts the red left half on top"
    assert bottom[2] > 0.8 and bottom[0] < 0.2


def test_animated_gif_gives_its_first_frame(tmp_path):
    path = write(tmp_path, "anim.gif", animated_gif())
    assert getattr(Image.open(path), "n_frames", 1) == 2
    got = load_image(path)
    assert got.rgb.shape == (H, W, 3)
    np.testing.assert_allclose(got.rgb.mean(axis=(0, 1)), [1, 0, 0], atol=0.02)


def test_animated_webp_gives_its_first_frame(tmp_path):
    red = Image.new("RGB", (W, H), (255, 0, 0))
    blue = Image.new("RGB", (W, H), (0, 0, 255))
    path = write(
        tmp_path, "anim.webp", encoded(red, "WEBP", save_all=True, append_images=[blue], lossless=True)
    )
    np.testing.assert_allclose(load_image(path).rgb.mean(axis=(0, 1)), [1, 0, 0], atol=0.02)


def test_fully_opaque_alpha_is_dropped(tmp_path):
    a = np.dstack([rgb8(3), np.full((H, W), 255, np.uint8)])
    Image.fromarray(a).save(tmp_path / "opaque.png")
    got = load_image(tmp_path / "opaque.png")
    assert got.mode == "RGBA" and got.alpha is None


# ----------------------------------------------------------------------------------------------
# arrays and other sources


@pytest.mark.parametrize(
    ("arr", "mode", "alpha"),
    [
        (rgb8(4)[:, :, 0], "L", False),
        (rgb8(4)[:, :, :1], "L", False),
        (rgb8(4)[:, :, :2], "LA", True),
        (rgb8(4), "RGB", False),
        (np.dstack([rgb8(4), rgb8(5)[:, :, 0]]), "RGBA", True),
        (grey16(), "I;16", False),
        (rgb8(4).astype(np.uint16) * 257, "RGB", False),
        (rgb8(4).astype(np.float32) / 255.0, "RGB", False),
        (rgb8(4).astype(np.float64) / 255.0, "RGB", False),
        (rgb8(4)[:, :, 0].astype(np.float32) / 255.0, "F", False),
        (rgb8(4)[:, :, 0] > 100, "1", False),
    ],
)
def test_arrays_load(arr, mode, alpha):
    got = load_image(arr)
    assert got.source == "<array>" and got.mode == mode
    assert got.rgb.dtype == np.float32 and got.rgb.shape == (H, W, 3)
    assert (got.alpha is not None) == alpha
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype, 1.0)
    colour = arr if arr.ndim == 2 else arr[:, :, : (3 if arr.shape[2] >= 3 else 1)]
    if colour.ndim == 2:
        colour = colour[:, :, None]
    np.testing.assert_allclose(got.rgb, np.broadcast_to(colour / scale, (H, W, 3)), atol=1e-6)


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((H, W, 5), np.uint8),
        np.zeros((W,), np.uint8),
        np.zeros((2, H, W, 3), np.uint8),
        np.zeros((0, W, 3), np.uint8),
        np.zeros((H, 0), np.uint8),
        np.zeros((H, W, 3), np.int64),
        np.zeros((H, W), np.complex64),
        np.zeros((H, W), object),
        np.full((H, W, 3), 200.0, np.float32),  # 0-255 floats: refused rather than clipped to white
        np.full((H, W, 3), np.nan, np.float32),
    ],
    ids=["5ch", "1d", "4d", "0rows", "0cols", "int64", "complex", "object", "float255", "nan"],
)
def test_unsupported_arrays_are_image_errors(arr):
    with pytest.raises(ImageError) as excinfo:
        load_image(arr)
    assert_one_line_image_error(excinfo, "<array>")


def test_other_sources(tmp_path):
    loaded = load_image(rgb8(6))
    assert load_image(loaded).rgb is loaded.rgb  # LoadedImage passes through without a copy
    assert load_image(Image.fromarray(rgb8(6))).source == "<PIL image>"
    path = tmp_path / "a.png"
    Image.fromarray(rgb8(6)).save(path)
    assert load_image(str(path)).size == load_image(path).size == (W, H)
    with pytest.raises(ImageError, match="cannot load an image from a int"):
        load_image(42)  # type: ignore[arg-type]


def test_longest_side_resizes_to_exactly_the_longest_side(tmp_path):
    a = np.dstack([rgb8(7), rgb8(8)[:, :, 0]])
    down = load_image(a, longest_side=12)
    assert down.size == (12, 8) and down.alpha is not None and down.alpha.shape == (8, 12)
    up = load_image(a, longest_side=48)
    assert up.size == (48, 32)
    same = load_image(a, longest_side=W)
    np.testing.assert_array_equal(same.rgb, load_image(a).rgb)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ParameterError):
            load_image(a, longest_side=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# errors: one line, naming the file


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def _big_png() -> bytes:
    return encoded(Image.fromarray(rng(9).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)), "PNG")


def _big_jpeg() -> bytes:
    return encoded(Image.fromarray(rng(9).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)), "JPEG")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"hello, this is not a picture\n" * 4, "text file"),
        ("page.jpg", b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (
            "lfs.png",
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12345\n",
            "git lfs pull",
        ),
        # named like an image: not "use a PNG file" (it is one, by name), but what may be wrong with it
        ("noise.png", random.Random(1).randbytes(512), "not a recognised image format, although named .png (corrupt"),
        ("noise.dat", random.Random(1).randbytes(512), "not a recognised image format; use a PNG, JPEG"),
        ("trunc.png", _truncated(_big_png(), 0.5), "truncated"),
        ("trunc_tail.png", _big_png()[:-30], "truncated"),
        ("trunc.jpg", _truncated(_big_jpeg(), 0.5), "truncated"),
        ("trunc_tail.jpg", _big_jpeg()[:-20], "truncated"),
        ("bomb.png", bomb_png(), "too large"),
        ("eps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "text file"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",
)
def test_bad_files_give_one_line_image_errors(tmp_path, name, data, reason):
    path = write(tmp_path, name, data)
    with pytest.raises(ImageError) as excinfo:
        load_image(path)
    msg = assert_one_line_image_error(excinfo, name)
    assert reason.lower() in msg.lower()
    assert excinfo.value.__cause__ is None or not isinstance(excinfo.value.__cause__, ImageError)


def test_missing_file_and_folder(tmp_path):
    (tmp_path / "photo.png").write_bytes(_big_png())
    with pytest.raises(ImageError) as excinfo:
        load_image(tmp_path / "phot.png")
    msg = assert_one_line_image_error(excinfo, "phot.png")
    assert "not found" in msg and "photo.png" in msg  # suggests the near miss
    with pytest.raises(ImageError) as excinfo:
        load_image(tmp_path / "nowhere" / "x.png")
    assert_one_line_image_error(excinfo, "x.png")
    with pytest.raises(ImageError) as excinfo:
        load_image(tmp_path)
    assert "folder" in assert_one_line_image_error(excinfo, str(tmp_path))


def test_a_path_with_a_null_byte_is_a_one_line_image_error():
    from gradfx.engine import run

    with pytest.raises(ImageError) as excinfo:  # was a bare ValueError: embedded null byte
        load_image("a\x00.png")
    assert "null byte" in assert_one_line_image_error(excinfo, "a\\x00.png")
    with pytest.raises(ImageError, match="null byte"):
        run("deepdream", "a\x00.png")


def test_devices_are_not_read():
    with pytest.raises(ImageError) as excinfo:
        load_image("/dev/null")
    assert "regular file" in assert_one_line_image_error(excinfo, "/dev/null")


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    path.write_bytes(_big_png())
    if os.geteuid() == 0:  # root reads anything: simulate the refusal at the module's `open`

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(loading, "open", refuse, raising=False)
    else:
        path.chmod(0)
    try:
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert "permission denied" in assert_one_line_image_error(excinfo, "secret.png").lower()
    finally:
        path.chmod(0o644)


def test_pillow_truncation_switch_is_forced_off_while_loading(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # someone else turned it on
    path = write(tmp_path, "cut.jpg", _truncated(_big_jpeg(), 0.6))
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and it is restored


# ----------------------------------------------------------------------------------------------
# decompression bombs


def test_bomb_header_is_refused_fast(tmp_path):
    path = write(tmp_path, "bomb.png", bomb_png())
    start = time.perf_counter()
    with pytest.raises(ImageError) as excinfo:
        load_image(path)
    assert time.perf_counter() - start < 1.0
    msg = assert_one_line_image_error(excinfo, "bomb.png")
    assert "100000x100000" in msg and "10,000,000,000" in msg  # the pixel count
    assert f"{DEFAULT_MAX_PIXELS:,}" in msg  # the limit
    assert MAX_PIXELS_ENV in msg and "set_max_pixels" in msg  # how to raise it


def test_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.fromarray(rgb8(10)).save(path)  # 24 x 16 = 384 pixels
    assert load_image(path).size == (W, H)

    previous = set_max_pixels(300)
    assert previous is None and get_max_pixels() == 300
    with pytest.raises(ImageError) as excinfo:
        load_image(path)
    assert "384" in str(excinfo.value) and "300" in str(excinfo.value)
    with pytest.raises(ImageError):
        load_image(Image.open(path))  # PIL images are checked too
    assert load_image(path, max_pixels=384).size == (W, H)  # a per-call limit wins
    set_max_pixels(None)

    monkeypatch.setenv(MAX_PIXELS_ENV, "383")
    with pytest.raises(ImageError, match="383"):
        load_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1_000")
    assert load_image(path).size == (W, H)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ParameterError, match=MAX_PIXELS_ENV):
        load_image(path)

    for bad in (0, -1, 1.5, "10"):
        with pytest.raises(ParameterError):
            set_max_pixels(bad)  # type: ignore[arg-type]


def test_our_limit_not_pillows_global_decides(tmp_path):
    """Raising the limit above Pillow's own guard works: Pillow's global is not what refuses images."""
    path = tmp_path / "small.png"
    Image.fromarray(rgb8(16)).save(path)  # 384 pixels
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100  # Pillow alone would raise DecompressionBombError above 200 pixels
    try:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(path)
        assert load_image(path).size == (W, H)
        assert Image.MAX_IMAGE_PIXELS == 100
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_per_call_limit_applies_to_animations(tmp_path):
    path = write(tmp_path, "anim.gif", animated_gif())
    with pytest.raises(ImageError, match="too large"):
        load_image(path, max_pixels=W * H - 1)


# ----------------------------------------------------------------------------------------------
# saving


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".PNG", ".JPG"])
def test_save_formats_round_trip(tmp_path, ext):
    smooth = np.linspace(0, 1, W * H * 3, dtype=np.float32).reshape(H, W, 3)
    out = save_image(tmp_path / f"out{ext}", smooth)
    assert out == tmp_path / f"out{ext}" and out.exists()
    lossy = ext.lower() in (".jpg", ".jpeg", ".webp")
    np.testing.assert_allclose(load_image(out).rgb, smooth, atol=0.06 if lossy else 0.5 / 255 + 1e-6)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_alpha_is_written_back(tmp_path, ext):
    colour = rgb8(11).astype(np.float32) / 255
    alpha = np.tile(np.linspace(0, 1, W, dtype=np.float32), (H, 1))
    out = save_image(tmp_path / f"a{ext}", colour, alpha=alpha, quality=100)
    assert Image.open(out).mode == "RGBA"
    np.testing.assert_allclose(load_image(out).alpha, alpha, atol=1 / 255 + 1e-6)


def test_jpeg_composites_alpha_over_white(tmp_path):
    black = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.float32)
    alpha[:, : W // 2] = 1.0
    out = save_image(tmp_path / "a.jpg", black, alpha=alpha)
    got = load_image(out)
    assert got.alpha is None
    assert got.rgb[:, : W // 2 - 2].mean() < 0.05 and got.rgb[:, W // 2 + 2 :].mean() > 0.95


def test_save_rejects_bad_paths(tmp_path):
    img = np.zeros((H, W, 3), np.float32)
    with pytest.raises(OutputError) as excinfo:
        save_image(tmp_path / "out.bmp", img)
    assert ".png" in str(excinfo.value) and ".tiff" in str(excinfo.value) and ".bmp" in str(excinfo.value)
    with pytest.raises(OutputError, match="does not exist"):
        save_image(tmp_path / "missing" / "out.png", img)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputError, match="folder"):
        save_image(tmp_path / "d.png", img)
    with pytest.raises(ValueError):
        save_image(tmp_path / "out.png", np.zeros((H, W, 2), np.float32))
    with pytest.raises(ValueError):
        save_image(tmp_path / "out.png", img, alpha=np.zeros((W, H), np.float32))


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((H, W, 3), np.float32))
    before = path.read_bytes()
    with pytest.raises(OutputError) as excinfo:
        save_image(path, np.ones((H, W, 3), np.float32), overwrite=False)
    assert "exists" in str(excinfo.value) and "--overwrite" in str(excinfo.value)
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    save_image(path, np.ones((H, W, 3), np.float32))  # overwrite=True (the default) replaces it
    assert load_image(path).rgb.min() == 1.0
    save_image(tmp_path / "new.png", np.ones((H, W, 3), np.float32), overwrite=False)  # a new name is fine


def test_protected_inputs_are_never_written(tmp_path, monkeypatch):
    src = tmp_path / "input.png"
    Image.fromarray(rgb8(12)).save(src)
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(src)
    monkeypatch.chdir(tmp_path / "sub")
    for spelling in (src, str(src), Path("../input.png"), tmp_path / "sub" / ".." / "input.png", link):
        with pytest.raises(OutputError) as excinfo:
            save_image(spelling, np.zeros((H, W, 3), np.float32), protect=[src])
        msg = str(excinfo.value)
        assert "input.png" in msg and "--overwrite" in msg and "\n" not in msg
    with pytest.raises(OutputError):  # protect holds even with overwrite=True
        save_image(src, np.zeros((H, W, 3), np.float32), overwrite=True, protect=[str(src)])
    assert src.read_bytes() == before
    save_image(tmp_path / "output.png", np.zeros((H, W, 3), np.float32), protect=[src])  # others are fine


def test_check_output_path_fails_before_any_work(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(rgb8(17)).save(src)
    assert check_output_path(tmp_path / "out.png", protect=[src], overwrite=False) == tmp_path / "out.png"
    assert not (tmp_path / "out.png").exists()  # nothing written
    for path, kwargs, words in [
        (src, {"protect": [src]}, "--overwrite"),
        (src, {"overwrite": False}, "exists"),
        (tmp_path / "out.gif", {}, ".webp"),
        (tmp_path / "no" / "out.png", {}, "does not exist"),
        (tmp_path, {}, "is a folder; give a file name"),  # was "unknown image extension '(none)'"
    ]:
        with pytest.raises(OutputError, match=words):
            check_output_path(path, **kwargs)


def refuse_new_files_in(folder, monkeypatch):
    """Make ``folder`` refuse new files, as a read-only mount does (chmod does not stop root)."""
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def test_check_output_path_tries_the_folder_so_an_unwritable_one_fails_before_any_work(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_new_files_in(locked, monkeypatch)
    with pytest.raises(OutputError, match="cannot write in .*locked.*permissions") as err:
        check_output_path(locked / "out.png")  # it used to pass, so the run failed only after the compute
    assert "\n" not in str(err.value) and os.listdir(locked) == []
    assert check_output_path(tmp_path / "out.png") == tmp_path / "out.png"
    assert sorted(os.listdir(tmp_path)) == ["locked"]  # the probe leaves nothing behind


def test_output_folder_is_created_and_tried_or_a_one_line_output_error(tmp_path, monkeypatch):
    assert atomic.output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert os.listdir(tmp_path / "a" / "b") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="demo folder .*file.* cannot be created .*choose another folder"):
        atomic.output_folder(tmp_path / "file", "demo folder")  # was a bare FileExistsError
    refuse_new_files_in(tmp_path / "a" / "b", monkeypatch)
    with pytest.raises(OutputError, match="cannot write in"):
        atomic.output_folder(tmp_path / "a" / "b")


def test_failed_save_leaves_no_partial_output_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((H, W, 3), np.float32))
    before = path.read_bytes()

    def half_then_crash(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_then_crash)
    with pytest.raises(OutputError) as excinfo:
        save_image(path, np.ones((H, W, 3), np.float32))
    assert "out.png" in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert path.read_bytes() == before
    with pytest.raises(OutputError):
        save_image(tmp_path / "fresh.png", np.ones((H, W, 3), np.float32))
    assert not (tmp_path / "fresh.png").exists()
    assert leftovers(tmp_path) == []
    monkeypatch.undo()

    def replace_fails(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OutputError, match="Input/output error"):
        save_image(path, np.ones((H, W, 3), np.float32))
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_atomic_write_helper(tmp_path):
    seen: list[Path] = []

    def write_json(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text('{"ok": true}')

    out = atomic_write(tmp_path / "report.weights.h5", write_json)
    assert out.read_text() == '{"ok": true}'
    assert seen[0].parent == tmp_path and seen[0].name.endswith("report.weights.h5")  # suffix survives
    assert not seen[0].exists()
    assert stat.S_IMODE(out.stat().st_mode) & 0o044, "new files get normal permissions, not mkstemp's 0600"

    class Boom(Exception):
        pass

    def crash(tmp: Path) -> None:
        tmp.write_text("half")
        raise Boom("from write_fn")

    with pytest.raises(Boom):  # write_fn's own exceptions propagate unchanged
        atomic_write(tmp_path / "report.weights.h5", crash)
    assert out.read_text() == '{"ok": true}' and leftovers(tmp_path) == []

    with pytest.raises(OutputError, match="exists"):
        atomic_write(out, write_json, overwrite=False)
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x.json", write_json)


def test_replacing_keeps_the_existing_files_permissions(tmp_path):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((H, W, 3), np.float32))
    path.chmod(0o640)
    save_image(path, np.ones((H, W, 3), np.float32))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ----------------------------------------------------------------------------------------------
# array helpers


def test_to_uint8_rounds_and_clips():
    x = np.array([-1.0, 0.0, 0.4 / 255, 0.6 / 255, 127.5 / 255 + 1e-4, 254.4 / 255, 1.0, 7.0, np.nan])
    assert to_uint8(x).tolist() == [0, 0, 0, 1, 128, 254, 255, 255, 0]
    assert to_uint8(np.zeros((2, 3, 3))).dtype == np.uint8


def test_resize_longest_keeps_aspect_and_range():
    img = rgb8(13, 40, 20).astype(np.float32) / 255
    out = resize_longest(img, 20)
    assert out.shape == (10, 20, 3) and out.dtype == np.float32
    assert out.min() >= img.min() and out.max() <= img.max()  # Lanczos ringing clipped
    assert resize_longest(img[:, :, 0], 80).shape == (40, 80)
    assert resize_longest(img, 40) is not img  # same size: a copy
    flat = np.full((7, 9, 3), 0.25, np.float32)
    np.testing.assert_allclose(resize_longest(flat, 33), 0.25, atol=1e-6)


@pytest.mark.parametrize(
    ("h", "w", "longest", "want"), [(1, 500, 50, (1, 50)), (500, 1, 50, (50, 1)), (1, 2000, 3, (1, 3))]
)
def test_resize_longest_extreme_aspect_never_gives_zero(h, w, longest, want):
    assert resize_longest(np.ones((h, w, 3), np.float32), longest).shape == (*want, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.integers(1, 200))
def test_resize_longest_property(h, w, longest):
    out = resize_longest(np.zeros((h, w), np.float32), longest)
    oh, ow = out.shape
    assert max(oh, ow) == longest and min(oh, ow) >= 1
    if min(h, w) * longest / max(h, w) >= 1:  # aspect kept up to rounding of the short side
        assert abs(oh / ow - h / w) <= (h / w) * (1 / min(oh, ow)) + 1e-9


def test_resize_longest_rejects_bad_sizes():
    for bad in (0, -1, 2.0):
        with pytest.raises(ParameterError):
            resize_longest(np.zeros((4, 4)), bad)  # type: ignore[arg-type]


def test_loaded_image_size():
    assert LoadedImage(np.zeros((3, 5, 3), np.float32), None, "<array>", "RGB").size == (5, 3)


def test_import_does_not_load_tensorflow():
    code = ("import sys, gradfx.engine.images.load, gradfx.engine.images.save; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# ----------------------------------------------------------------------------------------------
# fuzz-style corpus: hostile and odd files may load or raise ImageError, nothing else


def _corpus() -> dict[str, bytes]:
    png, jpeg = _big_png(), _big_jpeg()
    p = Image.fromarray(rgb8(14)).quantize(colors=8)
    p.info["transparency"] = 0
    corpus = {
        "zero.png": b"",
        "text.png": b"just words\n",
        "random.png": random.Random(2).randbytes(300),
        "png_magic_only.png": b"\x89PNG\r\n\x1a\n",
        "jpeg_magic_only.jpg": b"\xff\xd8\xff",
        "huge_header.png": bomb_png(),
        "zero_width.png": bomb_png(0, 10),
        "one.png": encoded(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"),
        "strip.png": encoded(Image.new("L", (1, 2000), 9), "PNG"),
        "sixteen.png": encoded(Image.fromarray(grey16()), "PNG"),
        "cmyk.jpg": encoded(Image.fromarray(rgb8(15)).convert("CMYK"), "JPEG"),
        "palette_transparent.png": encoded(p, "PNG", transparency=0),
        "palette_transparent.gif": encoded(p, "GIF", transparency=0),
        "anim.gif": animated_gif(),
        "exif.jpg": exif_jpeg(6),
        "exif_bad_orientation.jpg": exif_jpeg(99),
        "tiny.webp": encoded(Image.new("RGBA", (3, 2), (1, 2, 3, 4)), "WEBP"),
        "tiny.bmp": encoded(Image.new("RGB", (3, 2)), "BMP"),
        "eps.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100000 100000\nshowpage\n",
    }
    for frac in (0.05, 0.3, 0.6, 0.9, 0.99):
        corpus[f"cut{frac}.png"] = _truncated(png, frac)
        corpus[f"cut{frac}.jpg"] = _truncated(jpeg, frac)
    flip = random.Random(3)
    for i in range(12):  # a few random byte flips in valid files
        for name, data in (("png", png), ("jpg", jpeg)):
            buf = bytearray(data)
            for _ in range(4):
                buf[flip.randrange(8, len(buf))] = flip.getrandbits(8)
            corpus[f"flip{i}.{name}"] = bytes(buf)
    return corpus


def test_corpus_only_succeeds_or_raises_image_error(tmp_path):
    outcomes = {}
    for name, data in _corpus().items():
        path = write(tmp_path, name, data)
        try:
            got = load_image(path, max_pixels=10_000_000)
        except ImageError as exc:
            msg = str(exc)
            assert "\n" not in msg and name in msg, (name, msg)
            outcomes[name] = "error"
            continue
        assert got.rgb.dtype == np.float32 and got.rgb.ndim == 3 and got.rgb.shape[2] == 3, name
        assert np.isfinite(got.rgb).all() and got.rgb.min() >= 0 and got.rgb.max() <= 1, name
        assert got.alpha is None or got.alpha.shape == got.rgb.shape[:2], name
        outcomes[name] = "ok"
    # the well-formed ones must load, the broken ones must not
    for good in (
        "one.png",
        "strip.png",
        "sixteen.png",
        "cmyk.jpg",
        "palette_transparent.png",
        "anim.gif",
        "exif.jpg",
        "exif_bad_orientation.jpg",
        "tiny.webp",
        "tiny.bmp",
    ):
        assert outcomes[good] == "ok", good
    for bad in (
        "zero.png",
        "text.png",
        "random.png",
        "huge_header.png",
        "cut0.3.png",
        "cut0.6.jpg",
        "eps.eps",
    ):
        assert outcomes[bad] == "error", bad


def test_corpus_through_the_cli_gives_an_output_or_one_line_and_no_file(tmp_path, registry, capsys):
    """Every corpus file through ``gradfx run``: a valid output, or exit 2 with one line naming the file and no
    output file (partial or temporary) left behind. The effect is NumPy-only so this stays fast."""
    from gradfx.engine import Effect, Output, hookimpl
    from gradfx.tui.cli import main

    class Invert(Effect):
        name = "invert"
        summary = "1 - rgb"

        def run(self, ctx, params):
            return Output(1.0 - ctx.input.rgb)

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(Invert())

    registry.add_plugin(Plugin(), "invert")
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    for name, data in _corpus().items():
        src = write(inputs, name, data)
        out = outputs / f"{name}.png"
        code = main(["run", "invert", str(src), "-o", str(out), "-q"])
        err = capsys.readouterr().err.strip()
        if code == 0:
            with Image.open(out) as im:
                im.load()
        else:
            assert code == 2 and err.startswith("gradfx: error:") and name in err and "\n" not in err, (name, err)
            assert "Traceback" not in err and not out.exists(), name
    assert sorted(p.name for p in outputs.iterdir() if p.name.startswith(".")) == []  # no temporaries


def test_the_header_check_refuses_what_load_image_refuses_without_decoding_pixels(tmp_path, monkeypatch):
    good = write(tmp_path, "good.png", _big_png())
    check_image_file(good)
    # pixel data is not read: a file cut short passes here and is refused when it decodes
    check_image_file(write(tmp_path, "cut.png", _big_png()[:-30]))
    for name, data in (("noise.png", random.Random(1).randbytes(512)), ("notes.png", b"not a picture\n" * 4),
                       ("empty.png", b""), ("bomb.png", bomb_png())):
        path = write(tmp_path, name, data)
        with pytest.raises(ImageError) as header:
            check_image_file(path)
        with pytest.raises(ImageError) as loaded:
            load_image(path)
        assert str(header.value) == str(loaded.value)  # the one message for each
    with pytest.raises(ImageError, match="file not found"):
        check_image_file(tmp_path / "gone.png")
