"""The objective type: what an objective is, what it sees at each step (:class:`StepContext`) and once per stage
(:class:`BindContext`), and how objectives compose (``+ - *``, numbers). The objectives themselves are in
:mod:`.generic`, :mod:`.style` and :mod:`.pre_relu`; :mod:`gradfx.engine.objectives` names them all.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models.tf import tf

Features = Mapping[str, tf.Tensor]


@dataclass
class StepContext:
    """What an objective's function sees at each step besides the activations, inside the traced step
    (``tf.function``; a stage's shapes are traced once, so use ``tf.shape``, not static shapes):

    - ``image``: the batch that went into the network, (batch, H, W, 3) float32 in [0, 1], after the problem's
      ``transforms`` and ``levels``; under ``tile``, the tile this step evaluates (a crop of the rolled canvas);
    - ``aligned``: the problem's ``aligned`` images, (1, H, W, channels) float32, resized to the stage's canvas
      and cropped and rolled exactly like ``image`` (but not transformed).
    """

    image: tf.Tensor
    aligned: Mapping[str, tf.Tensor] = field(default_factory=dict)


@dataclass
class BindContext:
    """What ``Objective.bind`` gets once at the start of every stage (and again when the engine retries a run
    with smaller tiles), eagerly, outside the traced step: a place to compute targets from whole images.

    - ``size``: the stage's canvas, (height, width);
    - ``features(images)``: the backbone's activations of ``images``, (batch, H, W, 3) in [0, 1] (a NumPy
      array or a tensor, float; each side at least ``min_size``); the model's own preprocessing (VGG's BGR
      mean shift, Inception's [-1, 1]) is applied inside. Returns ``{layer: (batch, h, w, channels) float32
      tensor}`` for every layer the problem's whole objective reads (declare in ``layers`` the ones yours
      needs), computed eagerly: one forward pass per call, whole images (tile yourself for large ones:
      :func:`~gradfx.engine.objectives.gram_targets`). An objective's function may call it too: inside the
      step it is traced like the rest;
    - ``aligned``: the problem's aligned images at this stage's size, (1, H, W, channels) float32, whole
      (not cropped to tiles);
    - ``tile``: the tile size this stage runs with (0: the whole image at once). Read this, not your own
      parameter: the engine may retry with smaller tiles after running out of memory. Under tiles a step sees
      crops, so per-pixel targets from aligned images must be computed per crop in the step, not here;
    - ``stage``: the stage's index from 0; ``min_size``: the model's smallest input side in pixels.

    What a bind computes is a constant of the stage: keep it on the objective (an attribute, a dict) and read
    it in the objective's function, which is traced after the bind of every stage, so each stage's trace
    captures that stage's values (eager tensors, NumPy arrays). No gradient flows into it;
    ``tf.stop_gradient`` around it says so.
    """

    size: tuple[int, int]
    features: Callable[[Any], Features]
    stage: int = 0
    aligned: Mapping[str, tf.Tensor] = field(default_factory=dict)
    #: the tile size this stage runs with (0: the whole image at once): a step then sees tile crops, and
    #: targets from aligned images must be computed per crop rather than once here
    tile: int = 0
    #: the model's smallest input side (``ModelSpec.min_size``): images given to ``features`` must be at least
    #: this large on each side
    min_size: int = 1


class Objective:
    """A scalar function of layer activations; see the module docstring."""

    def __init__(
        self,
        fn: Callable[[Features, StepContext], tf.Tensor],
        description: str,
        layers: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        bind: Callable[[BindContext], None] | None = None,
        children: tuple[Objective, ...] = (),
        precedence: int = 3,
    ) -> None:
        self.fn = fn
        self.description = description
        self.layers = frozenset(layers).union(*(c.layers for c in children))
        self._bind = bind
        self.children = children
        self.precedence = precedence  # 1: + and -, 2: *, 3: atom; used to parenthesise descriptions

    def __call__(self, features: Features, ctx: StepContext) -> tf.Tensor:
        return self.fn(features, ctx)

    def bind(self, ctx: BindContext) -> None:
        """Compute per-stage targets (style Gram matrices, guide features). Recurses into children."""
        for child in self.children:
            child.bind(ctx)
        if self._bind is not None:
            self._bind(ctx)

    def __repr__(self) -> str:
        return self.description

    __str__ = __repr__

    def _wrapped(self, level: int) -> str:
        return f"({self.description})" if self.precedence < level else self.description

    # --- algebra -------------------------------------------------------------------------------------------
    def __add__(self, other: Objective | float) -> Objective:
        if isinstance(other, numbers.Number):
            if other == 0:
                return self
            k = float(other)
            return Objective(lambda f, c: self(f, c) + k, f"{self.description} + {k:g}", children=(self,),
                             precedence=1)
        if not isinstance(other, Objective):
            return NotImplemented
        desc = f"{self.description} + {other._wrapped(2)}"
        return Objective(lambda f, c: self(f, c) + other(f, c), desc, children=(self, other), precedence=1)

    def __radd__(self, other: float) -> Objective:
        return self.__add__(other)  # sum() starts from 0

    def __sub__(self, other: Objective | float) -> Objective:
        if isinstance(other, numbers.Number):
            return self + (-float(other))
        if not isinstance(other, Objective):
            return NotImplemented
        desc = f"{self.description} - {other._wrapped(2)}"
        return Objective(lambda f, c: self(f, c) - other(f, c), desc, children=(self, other), precedence=1)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __neg__(self) -> Objective:
        return Objective(lambda f, c: -self(f, c), f"-{self._wrapped(3)}", children=(self,), precedence=2)

    def __mul__(self, other: Objective | float) -> Objective:
        if isinstance(other, numbers.Number):
            k = float(other)
            return Objective(lambda f, c: k * self(f, c), f"{k:g} * {self._wrapped(2)}", children=(self,),
                             precedence=2)
        if not isinstance(other, Objective):
            return NotImplemented
        desc = f"{self._wrapped(2)} * {other._wrapped(3)}"
        return Objective(lambda f, c: self(f, c) * other(f, c), desc, children=(self, other), precedence=2)

    def __rmul__(self, other: float) -> Objective:
        return self.__mul__(other)

    def __truediv__(self, other: float) -> Objective:
        if not isinstance(other, numbers.Number):
            return NotImplemented
        return self * (1.0 / float(other))


def objective(func: Callable[..., Objective]) -> Callable[..., Objective]:
    """Decorator for objective factories: names the result from the call, e.g. ``channel(mixed4, 97)``,
    unless the factory set a description itself."""

    @functools.wraps(func)
    def factory(*args: Any, **kwargs: Any) -> Objective:
        obj = func(*args, **kwargs)
        if not obj.description:
            parts = [_arg(a) for a in args] + [f"{k}={_arg(v)}" for k, v in kwargs.items() if v is not None]
            obj.description = f"{func.__name__}({', '.join(parts)})"
        return obj

    return factory


def _arg(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"<{'x'.join(str(d) for d in value.shape)}>"
    return str(value)


def _batch(t: tf.Tensor, batch: int | None) -> tf.Tensor:
    return t if batch is None else t[batch : batch + 1]
