"""Temporal consistency for effects run over the frames of a video (Ruder et al. 2016).

Run frame by frame, an optimisation settles into a different local optimum on each frame, and the result
flickers. With ``temporal=flow`` an effect that supports it (style-transfer, deepdream) does three things on
every frame after the first, all through the ordinary engine:

- it starts from the previous output warped onto the current frame by the optical flow between the two
  input frames (:func:`gradfx.engine.flow.guide`), instead of from the content;
- it adds a temporal loss, ``temporal_weight * L0 * sum(mask * (x - warped)^2) / (3 * H * W)`` (``L0``: the
  effect's own loss at the warped previous output, see :func:`loss`), that keeps the output where the flow
  can be trusted (``mask``: the forward-backward consistency check). ``warped`` and
  ``mask`` are the problem's *aligned* images, so they follow the canvas through stages, tiles and rolls
  like the content image does; no special loop;
- it runs ``temporal_steps`` steps (default: :data:`FOLLOW_FRACTION` of ``steps``), since it starts close
  to its answer.

The previous frame reaches the effect as ``ctx.previous`` (a :class:`Previous`: the previous input frame and
output), which the caller running the frames in order passes to :func:`gradfx.engine.run` (``previous=``);
:func:`run_frames` is that caller for a list of frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .params import Choice, Float, Int, Param

if TYPE_CHECKING:
    from .api import Result
    from .effect import RunContext
    from .flow import Guide
    from .objectives import Objective

#: frames after the first run this share of ``steps`` by default (bench/RESULTS.md: video)
FOLLOW_FRACTION = 0.5
MODES = ("none", "flow")
#: names of the aligned images the temporal loss reads
WARPED, MASK = "temporal_warped", "temporal_mask"


@dataclass
class Previous:
    """The frame before the current one: its ``input`` (H x W x 3 in [0, 1], as given to the run) and the
    effect's ``output`` for it."""

    input: np.ndarray
    output: np.ndarray


def params(weight: float, weight_help: str) -> tuple[Param, ...]:
    """The temporal parameters an effect declares (the same three everywhere; ``weight`` is its default)."""
    return (
        Choice("temporal", "none", MODES, "over video frames: 'flow' starts each frame from the previous output "
               "warped by the optical flow and keeps it where the flow is reliable (no flicker)"),
        Float("temporal_weight", weight, weight_help, min=0),
        Int("temporal_steps", 0, f"steps per stage for frames after the first with temporal=flow (0: "
            f"{FOLLOW_FRACTION:g} x steps)", min=0, max=100_000),
    )


def follow_steps(p: Mapping[str, Any]) -> int:
    """Steps per stage for a frame after the first: ``temporal_steps``, or :data:`FOLLOW_FRACTION` of
    ``steps``."""
    return p["temporal_steps"] or max(1, math.ceil(p["steps"] * FOLLOW_FRACTION))


def active(ctx: RunContext, p: Mapping[str, Any]) -> bool:
    """Whether this run follows a previous frame in temporal mode."""
    return p.get("temporal", "none") == "flow" and getattr(ctx, "previous", None) is not None


def prepare(ctx: RunContext, current: np.ndarray) -> Guide:
    """Flow between the previous and the current input frame, brought to ``current``'s size (the canvas the
    effect optimises), the consistency mask, and the previous output warped onto it."""
    from . import flow

    prev = ctx.previous
    assert prev is not None
    size = current.shape[:2]
    return flow.guide(flow.fit(prev.input, size), current, flow.fit(prev.output, size))


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

    from .objectives import Objective, StepContext

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


def run_frames(effect: Any, frames: Iterable[Any], *, progress_frame: Callable[[int, Result], None] | None = None,
               **options: Any) -> Iterator[Result]:
    """Run ``effect`` over ``frames`` in order (arrays, paths or PIL images), each frame's run knowing the one
    before (``previous=``), so ``temporal=flow`` can carry the result along. ``options`` are
    :func:`gradfx.engine.run`'s (parameters, model, weights, seed...). Yields each frame's result."""
    from . import imageio
    from .api import run

    previous: Previous | None = None
    for i, frame in enumerate(frames):
        loaded = imageio.load_image(frame)
        result = run(effect, loaded, previous=previous, **options)
        if progress_frame is not None:
            progress_frame(i, result)
        yield result
        if result.partial:
            return
        previous = Previous(loaded.rgb, result.image)

