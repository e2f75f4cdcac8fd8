"""Sizes for style transfer: an image fitted to a size, and the coarse-to-fine scales of a run."""

from __future__ import annotations

import numpy as np


def fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` resized to exactly ``size`` (height, width), antialiased bicubic, clipped to [0, 1]."""
    import tensorflow as tf

    from gradfx.engine.optimise import schedule

    if img.shape[:2] == tuple(size):
        return img
    out = schedule.resize(tf.constant(img[None], tf.float32), tuple(size)).numpy()[0]
    return np.clip(out, 0.0, 1.0)


def stage_sizes(final: tuple[int, int], scales: int, min_size: int) -> list[tuple[int, int]]:
    """Coarse-to-fine canvas sizes, a factor of 2 apart, never below the model's minimum."""
    from gradfx.engine.optimise import schedule

    return schedule.octave_sizes(final, scales, 2.0, min_size)
