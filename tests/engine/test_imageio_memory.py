"""Decoding and saving hold no extra full-size float copies (issue 16: a 4096 px run peaked at 1.83x the
memory of a 512 px one, from the user's command, not the engine). Peaks are counted with tracemalloc, which
sees NumPy's and Python's allocations: deterministic, not timing."""

from __future__ import annotations

import tracemalloc

import numpy as np
from PIL import Image

from gradfx.engine.images.arrays import to_uint8
from gradfx.engine.images.load import load_image


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _reference_uint8(rgb: np.ndarray) -> np.ndarray:  # the whole-array formula to_uint8 replaced
    arr = np.nan_to_num(np.asarray(rgb, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def test_to_uint8_is_the_same_conversion_without_full_size_temporaries():
    rng = np.random.default_rng(0)
    image = rng.random((1200, 1600, 3), dtype=np.float32) * 1.4 - 0.2
    image[0, 0, 0], image[1, 1, 1], image[2, 2, 2] = np.nan, np.inf, -np.inf
    assert np.array_equal(to_uint8(image), _reference_uint8(image))
    assert np.array_equal(to_uint8(image[::3, 1::2]), _reference_uint8(image[::3, 1::2]))
    # was 3x the float image (three full-size float temporaries); now the uint8 output and chunk temporaries
    assert _peak(lambda: to_uint8(image)) < 0.5 * image.nbytes


def test_decoding_converts_to_float_without_a_second_full_size_copy(tmp_path):
    pixels = (np.random.default_rng(1).random((1200, 1600, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    floats = pixels.size * 4
    loaded = load_image(tmp_path / "in.png")
    np.testing.assert_array_equal(loaded.rgb, pixels.astype(np.float32) / 255.0)  # the same values
    assert _peak(lambda: load_image(tmp_path / "in.png")) < 1.6 * floats  # was 2.06x
