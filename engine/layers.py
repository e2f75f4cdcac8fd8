"""Layer lists with weights, ``name:weight,...``: the :func:`Layers` parameter and its parsed value.

``Layers("style_layers", "block1_conv1,block2_conv1:0.5", "...")`` declares one; when parameters resolve the
text is parsed once into a :class:`LayerList`, ``(("block1_conv1", 1.0), ("block2_conv1", 0.5))``, which the
effect reads (``dict(params["style_layers"])``), the plan checks against the step's model once
(:meth:`LayerWeights.layer_names`) and ``str()`` gives back as text for recipes, reports and forms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .params import Param
from .scalars import fmt

_LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


class LayerList(tuple):
    """A parsed layer list: ``(name, weight)`` pairs in the order given, each layer once. ``str()`` is its
    text (a weight of 1 left out), which :func:`parse_layer_weights` parses back to an equal list."""

    __slots__ = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self)

    def __str__(self) -> str:
        return ",".join(name if weight == 1 else f"{name}:{fmt(weight)}" for name, weight in self)

    def __repr__(self) -> str:
        return f"LayerList({str(self)!r})"


def parse_layer_weights(text: str | Iterable[Any], *, negative: bool = False) -> LayerList:
    """The one ``layer:weight`` list parser (deepdream's ``layers``, style transfer's ``content_layers`` and
    ``style_layers``): ``"block1_conv1,block2_conv1:0.5"`` -> ``(("block1_conv1", 1.0), ("block2_conv1", 0.5))``.

    Items are separated by commas, none empty; each is a layer name, optionally ``:weight`` (default 1.0), a
    finite number, at least 0 unless ``negative``; a layer is listed once; not every weight is zero. A list of
    ``(name, weight)`` pairs (a parsed list, a TOML array) is checked the same way. Raises ValueError saying
    what is wrong (names and numbers are parsed one by one, no ``eval``). Whether the model has the layers is
    checked when the model is known.
    """
    if isinstance(text, str):
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise ValueError("no layers")
        pairs = []
        for item in items:
            if not item:
                raise ValueError("empty item between commas")
            name, sep, weight_text = (part.strip() for part in item.partition(":"))
            pairs.append((name, weight_text if sep else 1.0))
    else:
        pairs = [tuple(pair) if isinstance(pair, (tuple, list)) else (pair, 1.0) for pair in text]
        if not pairs:
            raise ValueError("no layers")
    out: dict[str, float] = {}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"{pair!r} is not a (layer, weight) pair")
        name, raw = pair
        if not isinstance(name, str) or not _LAYER_NAME.match(name):
            raise ValueError(f"{name!r} is not a layer name")
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"weight {raw!r} of layer {name!r} is not a number") from None
        if not math.isfinite(weight):
            raise ValueError(f"weight of layer {name!r} is not finite")
        if weight < 0 and not negative:
            raise ValueError(f"weight {raw!r} of layer {name!r} is negative")
        if name in out:
            raise ValueError(f"layer {name!r} is listed twice")
        out[name] = weight
    if not any(out.values()):
        raise ValueError("every weight is zero")
    return LayerList(out.items())


@dataclass(frozen=True)
class LayerWeights(Param):
    """A ``layer:weight`` list, parsed by :func:`parse_layer_weights` into a :class:`LayerList` when
    parameters are resolved (before TensorFlow loads); ``negative`` allows weights below zero (DeepDream can
    push a layer down)."""

    negative: bool = False

    def allowed(self) -> str:
        return ("layer names with optional weights, name:weight,... (e.g. block3_conv1:1.0,block4_conv1:1.5)"
                + ("" if self.negative else ", weights >= 0"))

    def brief(self, min_size: int | None = None) -> str:
        return "name:weight,..." + ("" if self.negative else " (weights >= 0)")

    def coerce(self, value: Any, where: str = "") -> Any:
        if isinstance(value, LayerList) and (self.negative or all(w >= 0 for _, w in value)):
            return value  # parsed once already
        if value is None or isinstance(value, str):
            text = super().coerce(value, where)
            if text is None:
                return None
            value = text
        try:
            return parse_layer_weights(value, negative=self.negative)
        except ValueError as exc:
            raise self._fail(value if isinstance(value, str) else str(value), str(exc), where) from None

    def layer_names(self, value: Any) -> tuple[str, ...]:
        return () if value is None else value.names

    def to_json(self, value: Any) -> Any:
        return None if value is None else str(value)

    def format(self, value: Any) -> str:
        return "" if value is None else str(value)


def Layers(name: str, default: str, help: str = "", *, negative: bool = False,  # noqa: N802
           names_layers: bool = False) -> Param:
    """Layers of the backbone with weights, ``name:weight,...`` (see :func:`parse_layer_weights`); the value an
    effect reads is a :class:`LayerList`. ``names_layers``: a value set by the caller keeps the effect's default
    model (:attr:`Param.names_layers`)."""
    return LayerWeights(name, "str", default, help, negative=negative, names_layers=names_layers)


__all__ = ["LayerList", "LayerWeights", "Layers", "parse_layer_weights"]
