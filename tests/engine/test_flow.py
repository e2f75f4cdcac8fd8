"""Optical flow, warping, the consistency mask and the flicker measure, against the generated scene's true
motion (``samples.moving_scene`` knows every pixel's backward flow and whether it was visible before)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gradfx.engine import GradfxError
from gradfx.engine.images import samples
from gradfx.engine.temporal import flow


@pytest.fixture(scope="module")
def scene():
    return samples.moving_scene(frames=4, size=96)


def test_scene_true_flow_maps_each_frame_onto_the_next(scene):
    # the scene's own bookkeeping: frame t at the visible pixels is frame t - 1 read where the true flow says
    # (integer motion, so exact up to the disc's anti-aliased rim)
    for t in range(1, 4):
        warped = flow.warp(scene.frames[t - 1], scene.backward[t])
        err = np.abs(warped - scene.frames[t]).mean(axis=-1)[scene.valid[t]]
        assert np.median(err) < 1e-6 and err.mean() < 0.01
    assert 0.85 < scene.valid[1].mean() < 0.995  # the disc's wake and the entering edge are not visible


@pytest.mark.parametrize("method, tolerance", [("dis", 0.4), ("farneback", 1.5)])
def test_optical_flow_finds_the_true_motion(scene, method, tolerance):
    b = flow.optical_flow(scene.frames[2], scene.frames[1], method)
    assert b.shape == (96, 96, 2) and b.dtype == np.float32
    err = np.linalg.norm(b - scene.backward[2], axis=-1)[scene.valid[2]]
    assert err.mean() < tolerance
    # the background pans by (2, 1) px per frame: frame 2's pixels were at +(2, 1) in frame 1
    assert np.allclose(np.median(b[scene.valid[2]], axis=0), (2, 1), atol=0.25)


def test_dis_follows_a_small_object_against_the_background(scene):
    # the striped disc moves by (-3, 1) px a frame against the background's (-2, -1): DIS's preset, which stops
    # at half resolution, gave it nearly the background's motion, and the stylised disc smeared
    b = flow.optical_flow(scene.frames[2], scene.frames[1])
    disc = np.all(scene.backward[2] == (3, -1), axis=-1)
    assert disc.sum() > 300
    assert np.linalg.norm(b - scene.backward[2], axis=-1)[disc].mean() < 1.2  # 0.95 (the preset: 1.64)


def test_warp_keeps_fine_detail_through_repeated_subpixel_warps():
    # a video carries each output onto the next frame: the resampling's blur compounds. Nine half-pixel warps
    # keep most of the finest detail (bilinear keeps a quarter) and stay within the image's range
    img = np.random.default_rng(0).random((48, 48, 3), dtype=np.float32)
    half = np.full((48, 48, 2), 0.5, np.float32)

    def detail(x):
        return float(np.abs(np.diff(x[8:-8, 8:-8], axis=1)).mean())

    cubic, linear = img, img
    for _ in range(9):
        cubic, linear = flow.warp(cubic, half), flow.warp(linear, half, cubic=False)
    assert detail(cubic) > 2 * detail(linear)
    assert cubic.min() >= img.min() and cubic.max() <= img.max()


def test_consistency_mask_marks_the_disoccluded_wake(scene):
    t = 2
    b = flow.optical_flow(scene.frames[t], scene.frames[t - 1])
    f = flow.optical_flow(scene.frames[t - 1], scene.frames[t])
    mask = flow.consistency(b, f)
    assert mask.shape == (96, 96) and mask.min() >= 0 and mask.max() <= 1
    trusted = mask > 0.5
    assert (trusted & scene.valid[t]).sum() / trusted.sum() > 0.98  # precision: trusted pixels are visible
    assert (trusted & scene.valid[t]).sum() / scene.valid[t].sum() > 0.9  # recall: most visible are trusted
    assert mask[~scene.valid[t]].mean() < 0.3  # disoccluded / entered pixels are mostly masked out


def test_consistency_rules_on_synthetic_flows():
    h, w = 20, 30
    zero = np.zeros((h, w, 2), np.float32)
    assert np.array_equal(flow.consistency(zero, zero, smooth=0), np.ones((h, w), np.float32))
    # a uniform shift of 3 px in x: pixels whose source is outside the frame are 0, the rest 1
    shift = np.zeros((h, w, 2), np.float32)
    shift[..., 0] = 3
    m = flow.consistency(shift, -shift, smooth=0)
    assert np.all(m[:, : w - 3] == 1) and np.all(m[:, w - 3 :] == 0)
    # a forward flow that does not undo the backward one: the round trip misses, inconsistent everywhere
    assert flow.consistency(shift, shift, smooth=0).max() == 0
    # a motion boundary: two halves moving differently are cut along the boundary
    split = np.zeros((h, w, 2), np.float32)
    split[:, 15:, 0] = 1
    m = flow.consistency(split, -split, smooth=0)
    assert np.all(m[:, 14:16] == 0) and np.all(m[:, :13] == 1)


def test_warp_reads_at_p_plus_flow():
    img = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    shift = np.zeros((16, 16, 2), np.float32)
    shift[..., 1] = 2  # read two rows down
    out = flow.warp(img, shift)
    assert np.allclose(out[:14], img[2:]) and np.allclose(out[14:], img[15:16])  # edges: nearest pixel


def test_flicker_is_zero_for_a_consistent_video_and_grows_with_noise(scene):
    assert flow.flicker(scene.frames, scene.frames) < 3 / 255  # the input itself follows its own flow
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 0.05, f.shape), 0, 1).astype(np.float32) for f in scene.frames]
    assert flow.flicker(scene.frames, noisy) > 0.03


def test_errors_are_one_line_and_name_the_fix(scene, monkeypatch):
    with pytest.raises(GradfxError, match="same size"):
        flow.optical_flow(scene.frames[0], scene.frames[1][:50])
    with pytest.raises(GradfxError, match="dis, farneback"):
        flow.optical_flow(scene.frames[0], scene.frames[1], "lucas")
    with pytest.raises(GradfxError, match="at least 2"):
        flow.flicker(scene.frames[:1], scene.frames[:1])
    monkeypatch.setitem(sys.modules, "cv2", None)  # OpenCV not installed
    with pytest.raises(GradfxError, match=r"pip install 'gradfx\[video\]'") as info:
        flow.optical_flow(scene.frames[0], scene.frames[1])
    assert "\n" not in str(info.value)
