"""Optical flow between video frames, warping by a flow, and the forward-backward consistency mask.

The pieces of temporally consistent video effects (Ruder, Dosovitskiy and Brox, "Artistic style transfer for
videos", 2016): the flow between consecutive input frames, the previous output warped into the current
frame, and a mask of the pixels where that warp can be trusted.

Conventions: images are H x W x 3 floats in [0, 1]; a flow is H x W x 2 float32 (x then y, in pixels) on the
grid of the frame it starts from: ``flow_ab`` says that pixel ``p`` of ``a`` is at ``p + flow_ab[p]`` in ``b``.
So the *backward* flow of frame t (from t to t - 1) warps anything on frame t - 1's grid onto frame t's:
``warp(out_prev, backward)[p] = out_prev[p + backward[p]]``.

Flow comes from OpenCV (``opencv-python-headless``, the ``gradfx[video]`` extra): DIS (Kroeger et al. 2016,
``cv2.DISOpticalFlow``, preset MEDIUM refined down to full resolution) by default, Farnebäck
(``cv2.calcOpticalFlowFarneback``) on request. The preset stops at half resolution, where a small object
moving against the background gets the background's motion: on the scene's striped disc it erred by 1.6 px,
and the stylised disc, carried along with the background, smeared into a pale blob with a ghost behind it;
at full resolution 0.6 px, and the background's error drops from 0.11 px to 0.02 px, for a flow that still
takes milliseconds a frame beside the seconds of the effect.
On the generated moving scene (:func:`gradfx.engine.samples.moving_scene`, 24 frames at 128 px, true flow
known) DIS's endpoint error over the visible pixels is 0.05 px against Farnebäck's 0.73 px, so its
consistency mask keeps 96% of the visible pixels against Farnebäck's 64%; see ``bench/RESULTS-video.md``
(``python bench/video.py --flow-only``) and docs/video.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import GradfxError
from ..images.arrays import to_uint8

METHODS = ("dis", "farneback")


def _cv2() -> ModuleType:
    try:
        import cv2
    except ImportError:
        raise GradfxError("optical flow needs OpenCV, which is not installed; install the video extra: "
                          "pip install 'gradfx[video]'") from None
    return cv2


def _grey8(image: np.ndarray) -> np.ndarray:
    """An RGB float image in [0, 1] as 8-bit luma, the input OpenCV's flow methods take."""
    rgb = np.asarray(image, np.float32)
    if rgb.ndim == 3:
        rgb = rgb @ np.float32([0.299, 0.587, 0.114])
    return to_uint8(rgb)


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from image ``a`` to image ``b`` (same size): H x W x 2 float32, ``a[p] ~ b[p + flow[p]]``."""
    cv2 = _cv2()
    if method not in METHODS:
        raise GradfxError(f"flow method {method!r} is unknown; use one of {', '.join(METHODS)}")
    if np.shape(a)[:2] != np.shape(b)[:2]:
        raise GradfxError(f"flow needs two frames of the same size, not {np.shape(a)[1]}x{np.shape(a)[0]} and "
                          f"{np.shape(b)[1]}x{np.shape(b)[0]}; resize the frames to one size")
    ga, gb = _grey8(a), _grey8(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)  # the preset stops at half resolution: see the module docstring
        flow = dis.calc(ga, gb, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.1, flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN)
    return np.asarray(flow, np.float32)


def warp(image: np.ndarray, flow: np.ndarray, *, cubic: bool = True) -> np.ndarray:
    """``image`` resampled at ``p + flow[p]``: an image on the grid of the frame ``flow`` starts from.
    Positions outside ``image`` take its nearest edge pixel (the consistency mask marks them).

    Bicubic by default, its overshoot clipped to ``image``'s own range: a video effect warps each output onto
    the next frame, so the resampling's blur compounds over the frames. Bilinear sampling half a pixel off
    halves the finest detail each time (nine such warps keep a quarter of it, bicubic nine tenths), and even
    a flow that is right to a tenth of a pixel costs bilinear 13% of the detail per frame (docs/video.md).
    ``cubic=False``: bilinear, for fields that must not overshoot between samples (a flow read by a flow)."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    src = np.asarray(image, np.float32)
    out = cv2.remap(src, gx + flow[..., 0], gy + flow[..., 1],
                    interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if cubic and src.size:
        out = np.clip(out, src.min(), src.max())
    return out.reshape(src.shape[:2] + src.shape[2:]) if src.ndim == 3 and out.ndim == 2 else out


def sources_inside(backward: np.ndarray) -> np.ndarray:
    """H x W bool: the pixels of frame t whose source by ``backward`` lies inside frame t - 1 (the rest
    entered the picture)."""
    h, w = backward.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    bx, by = gx + backward[..., 0], gy + backward[..., 1]
    return (bx >= 0) & (bx <= w - 1) & (by >= 0) & (by <= h - 1)


def consistency(backward: np.ndarray, forward: np.ndarray, *, smooth: float = 0.8) -> np.ndarray:
    """Where the warp by ``backward`` (frame t -> t - 1) can be trusted: H x W float32 in [0, 1] on frame t.

    Ruder et al.'s check (their ``consistencyChecker``), written for NumPy: following ``backward`` and then
    ``forward`` (frame t - 1 -> t, sampled where ``backward`` lands) should return to the start; a pixel is
    0 when the round trip misses by ``|b + f|^2 >= 0.01 (|b|^2 + |f|^2) + 0.5`` (disocclusion, bad flow),
    when it lands outside the frame, and at motion boundaries, where the flow's gradient is large
    (``|grad b|^2 > 0.01 |b|^2 + 0.002``). A small Gaussian (sigma ``smooth`` px) softens the mask, with the
    inconsistent pixels counted as -1 so the softening widens them, then the mask is clipped to [0, 1].
    """
    cv2 = _cv2()
    inside = sources_inside(backward)
    f = warp(forward, backward, cubic=False)  # forward flow read where each pixel of t lands in t - 1
    trip = np.sum((backward + f) ** 2, axis=-1)
    mag = np.sum(backward**2, axis=-1) + np.sum(f**2, axis=-1)
    consistent = trip < 0.01 * mag + 0.5
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    edge = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2 > 0.01 * np.sum(backward**2, axis=-1) + 0.002
    mask = np.where(consistent, np.where(edge, 0.0, 1.0), -1.0).astype(np.float32)
    mask[~inside] = 0.0
    if smooth > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), smooth, borderType=cv2.BORDER_REPLICATE)
    return np.clip(mask, 0.0, 1.0)


@dataclass
class Guide:
    """The previous output brought onto the current frame: ``warped`` (H x W x 3) and ``mask`` (H x W in
    [0, 1], where ``warped`` can be trusted), plus the ``backward`` flow they came from."""

    warped: np.ndarray
    mask: np.ndarray
    backward: np.ndarray


def guide(prev_input: np.ndarray, cur_input: np.ndarray, prev_output: np.ndarray, method: str = "dis") -> Guide:
    """Flow both ways between two consecutive input frames, the consistency mask, and the previous output
    warped onto the current frame. ``prev_output`` is resized to the frames' size when it differs."""
    backward = optical_flow(cur_input, prev_input, method)
    forward = optical_flow(prev_input, cur_input, method)
    prev = fit(prev_output, backward.shape[:2])
    return Guide(warp(prev, backward), consistency(backward, forward), backward)


def flicker(inputs: Any, outputs: Any, method: str = "dis") -> float:
    """The temporal error of a stylised video: the mean absolute difference between output frame t and
    output frame t - 1 warped by the *input* frames' flow, over the consistent pixels (weighted by the
    consistency mask), averaged over the frames t >= 1. In [0, 1] units of the pixel values."""
    inputs, outputs = list(inputs), list(outputs)
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise GradfxError(f"flicker needs as many outputs as inputs, at least 2 (got {len(inputs)} inputs and "
                          f"{len(outputs)} outputs)")
    errors = []
    for t in range(1, len(inputs)):
        g = guide(inputs[t - 1], inputs[t], outputs[t - 1], method)
        cur = fit(outputs[t], g.mask.shape)
        diff = np.abs(cur - g.warped).mean(axis=-1)
        errors.append(float(np.sum(g.mask * diff) / max(float(np.sum(g.mask)), 1e-6)))
    return float(np.mean(errors))


def detail(image: np.ndarray) -> float:
    """The energy of an image's finest detail: the mean absolute difference between it and itself blurred by
    a Gaussian of 1 px (H x W x 3 in [0, 1]). A video effect's frames compare theirs with their independent
    frames': an output that fades (a warp that blurs it frame after frame, paint that never reaches what
    enters the picture) loses detail while its flicker improves, so flicker alone does not see it."""
    cv2 = _cv2()
    img = np.asarray(image, np.float32)
    return float(np.abs(img - cv2.GaussianBlur(img, (0, 0), 1.0)).mean())


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (height, width) with area averaging (unchanged when it has that size)."""
    image = np.asarray(image, np.float32)
    if image.shape[:2] == tuple(size):
        return image
    cv2 = _cv2()
    return np.clip(cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA), 0.0, 1.0)
