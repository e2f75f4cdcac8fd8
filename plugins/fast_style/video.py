"""fast-style over the frames of a video: ``temporal=flow``.

AdaIN is deterministic, but a small change of the input repaints its strokes, so frames stylised one by one
boil (17.5/255 of flicker on the generated scene). Blending the AdaIN features with those of the warped
previous output does not help (the decoder paints that blend with strokes of its own: 0.95x the flicker at
half and half), and blending the pixels by a share below one averages two unrelated textures, which flickers
less but loses up to half the detail. What works is holding the pixels: where the consistency mask trusts
the flow, the output is the previous output warped onto this frame, whose strokes then stay on the surface
they were painted on, with its large-scale tone (a Gaussian of :data:`TONE_SIGMA` px) taken from this
frame's own stylisation, so that light and colour changes the motion does not explain (a shadow, a fade)
come through and the colours do not drift from an independent frame's; elsewhere (what entered the picture,
what a moving object uncovered) the output is this frame's stylisation. It costs the optical flow and two
blurs, a small part of the pass. The figures: docs/fast-style.md and bench/RESULTS-fast-style.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradfx.engine.params import Param
from gradfx.engine.temporal import consistency

if TYPE_CHECKING:
    from gradfx.engine import RunContext

#: the Gaussian (px) below which the held output keeps the previous strokes and above which it takes this
#: frame's tone: 8 px held the flicker to 0.28-0.32x with every frame's detail at 0.95 of an independent
#: frame's or more; 4 px let 0.42-0.45x through, 16 px let the colours drift 3-5/255 from the frame's own
TONE_SIGMA = 8.0
#: temporal_weight's default: the share of the held output where the flow is trusted
HOLD = 1.0


def params() -> tuple[Param, ...]:
    """``temporal``, ``temporal_weight`` (how much of the held output, 0 to 1) and ``temporal_frames``."""
    return consistency.params(HOLD, "with temporal=flow, the share of the previous output (warped, with this "
                              "frame's tone) kept where the flow is trusted: 1 holds the strokes still, less "
                              "mixes in this frame's own (which flickers)", steps=False, weight_max=1.0)


def follow(ctx: RunContext, params: Mapping[str, Any], frame: np.ndarray, out: np.ndarray
           ) -> tuple[np.ndarray, dict[str, Any]] | None:
    """``out`` (this ``frame``'s stylisation) held to the previous output where the flow is trusted, and what
    the report says of it (the share of the picture held, the seconds it took); None when this run does not
    follow a previous frame."""
    import cv2

    def held(warped: np.ndarray) -> np.ndarray:
        tone = cv2.GaussianBlur(out - warped, (0, 0), TONE_SIGMA, borderType=cv2.BORDER_REFLECT)
        return out + params["temporal_weight"] * (warped + tone - out)

    started = time.perf_counter()
    following = consistency.follow(ctx, params, frame, out, look=held)
    if following is None:
        return None
    return following.init, {"held": round(float(following.guide.mask.mean()), 4),
                            "seconds": round(time.perf_counter() - started, 4)}
