"""The style parameters that style effects share, declared once: the style images, their blend, their scale,
masks for regions and colour preservation (style-transfer's and fast-style's), their checks, and colour
preservation's pre- and post-step (:mod:`gradfx.engine.images.colour`). NumPy only.

An effect lists them among its parameters (``params = (STYLE, STYLE_BLEND, ...)``), calls :func:`check` from
its :meth:`~gradfx.engine.Effect.check`, and :func:`prepare_colors` / :func:`restore_colors` around its work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ParameterError
from .images.colour import grey3, luminance, match_color_histogram, match_luminance, restore_chroma
from .params import Choice, Float, Floats, Images

__all__ = ["COLOR_MODES", "MASK", "PRESERVE_COLORS", "STYLE", "STYLE_BLEND", "STYLE_SCALE", "blend", "check",
           "prepare_colors", "restore_colors", "style_size"]

COLOR_MODES = ("none", "luminance", "histogram")

STYLE = Images("style", "style image(s), comma-separated", required=True)
STYLE_BLEND = Floats("style_blend", None, "one weight per style (default: equal); masked styles use them as "
                     "per-region strengths", min=0)
STYLE_SCALE = Float("style_scale", 1.0, "style image size relative to the output canvas (longest sides)",
                    min=0.05, max=8)
PRESERVE_COLORS = Choice("preserve_colors", "none", COLOR_MODES,
                         "keep the content's colours: luminance-only transfer, or match the styles' colour "
                         "histogram to the content first")
MASK = Images("mask", "one mask image per style (white: apply that style there)")


def _fmt(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def blend(params: Mapping[str, Any]) -> tuple[float, ...]:
    """The styles' weights: ``style_blend``, or equal weights."""
    return tuple(params["style_blend"] or (1.0,) * len(params["style"]))


def check(params: Mapping[str, Any]) -> None:
    """One weight per style, not all zero; one mask per style. Raises :class:`ParameterError` naming the
    parameter (the effect's check adds the effect or the step)."""
    n = len(params["style"])
    weights = blend(params)
    if len(weights) != n:
        raise ParameterError(f"parameter 'style_blend': {_fmt(weights)!r} has {len(weights)} weight(s) but "
                             f"there are {n} style image(s); expected {n} numbers >= 0, one per style")
    if sum(weights) <= 0:
        raise ParameterError(f"parameter 'style_blend': {_fmt(weights)!r} sums to 0; expected at least one "
                             f"positive weight")
    if params["mask"] and len(params["mask"]) != n:
        raise ParameterError(f"parameter 'mask': {len(params['mask'])} mask(s) for {n} style image(s); "
                             f"expected one mask per style, comma-separated in the same order")


def prepare_colors(mode: str, content: np.ndarray, styles: Sequence[np.ndarray]
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Colour preservation's pre-step: the content and the styles the transfer works on. ``histogram``: each
    style's colours matched to the content's (Gatys et al. 2016); ``luminance``: both in grey, each style's
    luminance matched to the content's (its chroma goes back with :func:`restore_colors`); ``none``: as they
    are."""
    if mode == "histogram":
        return content, [match_color_histogram(s, content) for s in styles]
    if mode == "luminance":
        content_y = luminance(content)
        return grey3(content_y), [grey3(match_luminance(luminance(s), content_y)) for s in styles]
    return content, list(styles)


def restore_colors(mode: str, image: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Colour preservation's post-step: with ``luminance``, ``image``'s luminance with ``content``'s chroma;
    else ``image``."""
    return restore_chroma(image, content) if mode == "luminance" else image


def style_size(style_shape: Sequence[int], canvas: Sequence[int], scale: float, minimum: int) -> tuple[int, int]:
    """(height, width) of a style image whose longest side is ``scale`` times the canvas's, its shorter side
    at least ``minimum``."""
    h, w = int(style_shape[0]), int(style_shape[1])
    longest = max(1, round(scale * max(canvas[0], canvas[1])))
    k = max(longest / max(h, w), minimum / min(h, w))  # never below the minimum
    return max(minimum, round(h * k)), max(minimum, round(w * k))
