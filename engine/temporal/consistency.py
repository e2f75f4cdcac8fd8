"""Temporal consistency for effects run over the frames of a video (Ruder et al. 2016).

Run frame by frame, an optimisation settles into a different local optimum on each frame, and the result
flickers. With ``temporal=flow`` an effect that optimises (style-transfer, deepdream) does three things on
every frame after the first, all through the ordinary engine (an effect that does not optimise, fast-style,
takes :func:`follow`'s start as its output: the previous output held where the flow is trusted):

- it starts from the previous output warped onto the current frame by the optical flow between the two
  input frames (:func:`gradfx.engine.flow.guide`), instead of from the content;
- it adds a temporal loss, ``temporal_weight * L0 * sum(mask * (x - warped)^2) / (3 * H * W)`` (``L0``: the
  effect's own loss at the warped previous output, see :func:`loss`), that keeps the output where the flow
  can be trusted (``mask``: the forward-backward consistency check). ``warped`` and
  ``mask`` are the problem's *aligned* images, so they follow the canvas through stages, tiles and rolls
  like the content image does; no special loop;
- it runs ``temporal_steps`` steps (default: :data:`FOLLOW_FRACTION` of ``steps``), since it starts close
  to its answer.

With ``temporal_frames`` > 1 (long-term consistency) the warped output and the mask combine several previous
frames, each pixel following the most recent frame in which it was visible (:func:`prepare`).

The previous frame reaches the effect as ``ctx.previous`` (a :class:`Previous`: the previous input frame and
output, and the earlier ones), which the caller running the frames in order passes to :func:`gradfx.engine.run` (``previous=``);
:func:`gradfx.engine.run_frames` is that caller for a list of frames (:mod:`.frames` keeps them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..params import Choice, Float, Int, Param

if TYPE_CHECKING:
    from ..effect import RunContext
    from ..objectives import Objective
    from .flow import Guide

#: frames after the first run this share of ``steps`` by default (docs/video.md)
FOLLOW_FRACTION = 0.5
MODES = ("none", "flow")
#: the most previous frames long-term consistency (``temporal_frames``) may follow
MAX_FRAMES = 16
#: names of the aligned images the temporal loss reads
WARPED, MASK = "temporal_warped", "temporal_mask"


def params(weight: float, weight_help: str, origin: str = "", *, steps: bool = True, weight_max: float | None = None,
           **per_model: tuple[float, str]) -> tuple[Param, ...]:
    """The temporal parameters an effect declares (the same everywhere; ``weight`` is ``temporal_weight``'s
    default, at most ``weight_max``, ``per_model`` its defaults on other models with their origins, see
    :meth:`Param.per_model`). ``steps=False``: an effect that does not optimise has no ``temporal_steps``."""
    temporal_weight = Float("temporal_weight", weight, weight_help, min=0, max=weight_max)
    return (
        Choice("temporal", "none", MODES, "over video frames: 'flow' starts each frame from the previous output "
               "warped by the optical flow and keeps it where the flow is reliable (no flicker)"),
        *(p.only_when(temporal="flow") for p in (
            temporal_weight.per_model(origin, **per_model) if per_model else temporal_weight,
            *([Int("temporal_steps", 0, f"steps per stage for frames after the first with temporal=flow (0: "
                   f"{FOLLOW_FRACTION:g} x steps)", min=0, max=100_000)] if steps else []),
            Int("temporal_frames", 1, "long-term consistency: hold each pixel to the most recent of this "
                "many previous outputs in which it was visible (1: the previous frame only)", min=1,
                max=MAX_FRAMES))),
    )


def follow_steps(p: Mapping[str, Any]) -> int:
    """Steps per stage for a frame after the first: ``temporal_steps``, or :data:`FOLLOW_FRACTION` of
    ``steps`` (0 for an effect that does not optimise)."""
    if "steps" not in p:
        return 0
    return p["temporal_steps"] or max(1, math.ceil(p["steps"] * FOLLOW_FRACTION))


def active(ctx: RunContext, p: Mapping[str, Any]) -> bool:
    """Whether this run follows a previous frame in temporal mode."""
    return p.get("temporal", "none") == "flow" and getattr(ctx, "previous", None) is not None


def flow_guide(ctx: RunContext, current: np.ndarray, frames: int = 1) -> Guide:
    """Flow between the previous and the current input frame, brought to ``current``'s size (the canvas the
    effect optimises), the consistency mask, and the previous output warped onto it.

    ``frames`` > 1 (long-term consistency, Ruder et al. 2016, section 3.2): the previous outputs of up to that
    many frames (``ctx.previous`` and its ``earlier`` ones), each warped by its own flow to the current frame
    with its own consistency mask ``c_j``; a pixel follows the most recent frame in which it was visible, with
    weight ``max(c_j - sum(c_k for more recent k), 0)``. The weights' sum is the returned mask and the
    weighted mean of the warped outputs the returned ``warped``: the masked squared distance to them has the
    gradient of the sum of the per-frame terms, so the temporal loss stays one aligned pair."""
    from . import flow

    prev = ctx.previous
    assert prev is not None
    size = current.shape[:2]
    guides = [flow.guide(flow.fit(p.input, size), current, flow.fit(p.output, size))
              for p in prev.frames()[:max(1, frames)]]
    if len(guides) == 1:
        return guides[0]
    covered = np.zeros(size, np.float32)
    total = np.zeros(size, np.float32)
    target = np.zeros((*size, 3), np.float32)
    for g in guides:
        weight = np.maximum(g.mask - covered, 0.0)
        target += weight[..., None] * g.warped
        total += weight
        covered += g.mask
    mean = np.where(total[..., None] > 1e-6, target / np.maximum(total, 1e-6)[..., None], guides[0].warped)
    return flow.Guide(mean.astype(np.float32), np.minimum(total, 1.0), guides[0].backward)


@dataclass
class Following:
    """A video frame after the first, run with ``temporal=flow``: where it starts (:attr:`init`: the previous
    output warped where the flow is trusted, the frame's own start elsewhere), the aligned images the
    temporal loss reads, its steps per stage, and the :class:`~.flow.Guide` (flow, mask, warped output)."""

    init: np.ndarray
    aligned: dict[str, np.ndarray]
    steps: int
    guide: Guide

    def hold(self, objective: Objective, weight: float, *, maximize: bool = False) -> Objective:
        """``objective`` with the temporal loss (weighted, relative to it, see :func:`loss`) pulling towards
        the warped previous output: added when minimising, subtracted when maximising (DeepDream)."""
        if weight <= 0:
            return objective
        term = weight * loss(relative_to=objective)
        return objective - term if maximize else objective + term


def follow(ctx: RunContext, params: Mapping[str, Any], frame: np.ndarray, start: np.ndarray, *,
           look: Callable[[np.ndarray], np.ndarray] | None = None, carry: float = 1.0) -> Following | None:
    """The one "follow the previous frame" step every temporal effect takes, or None when this run does not
    (:func:`active`): the flow guide from the previous frame to ``frame`` (the canvas, in [0, 1]), the warped
    previous output optionally passed through ``look`` (the effect's own colour handling) and carried only
    ``carry`` of the way from ``frame`` (1: all of it; DeepDream carries part so the dream does not grow with
    every frame), blended with ``start`` (the effect's own start) where the flow cannot be trusted."""
    if not active(ctx, params):
        return None
    guide = flow_guide(ctx, frame, params["temporal_frames"])
    if look is not None:
        guide.warped = look(guide.warped)
    if carry != 1.0:
        guide.warped = frame + carry * (guide.warped - frame)
    m = guide.mask[..., None]
    init = np.clip(m * guide.warped + (1 - m) * start, 0.0, 1.0).astype(np.float32)
    return Following(init, aligned(guide), follow_steps(params), guide)


def aligned(guide: Guide) -> dict[str, np.ndarray]:
    """The aligned images :func:`loss` reads."""
    return {WARPED: guide.warped.astype(np.float32), MASK: guide.mask[..., None].astype(np.float32)}


def loss(relative_to: Objective | None = None) -> Objective:
    """``sum(mask * (x - warped)^2) / (3 * H * W)`` over the canvas: the mean squared distance to the warped
    previous output where it can be trusted. Tiles add up to the whole canvas's value.

    ``relative_to``: an objective whose scale varies by orders of magnitude with the model and its weights
    (DeepDream's activations): the loss is then multiplied by that objective's absolute value at the warped
    previous output, measured once per stage (on one tile's crop when tiled, scaled to the canvas), so a
    ``temporal_weight`` means the same with any backbone. Bind it after ``relative_to`` (``a - w * loss(a)``).
    """
    import tensorflow as tf

    from ..objectives import Objective, StepContext

    state = {"area": 1.0, "scale": 1.0}

    def bind(ctx: Any) -> None:
        h, w = ctx.size
        state["area"] = float(h * w)
        if relative_to is not None:
            side = ctx.tile or max(h, w)
            crop = {k: v[:, :side, :side] for k, v in ctx.aligned.items()}
            x = crop[WARPED]
            share = float(x.shape[1] * x.shape[2]) / state["area"]
            value = relative_to(ctx.features(x), StepContext(image=x, aligned=crop))
            state["scale"] = max(abs(float(value)) / share, 1e-12)

    def fn(f: Any, c: Any) -> Any:
        x = c.image
        batch = tf.cast(tf.shape(x)[0], tf.float32)
        mse = tf.reduce_sum(c.aligned[MASK] * tf.square(x - c.aligned[WARPED])) / (3.0 * state["area"] * batch)
        return mse * state["scale"]

    what = "warped previous output" if relative_to is None else "warped previous output, relative"
    return Objective(fn, f"temporal({what})", (), bind)
