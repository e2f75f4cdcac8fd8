"""Which model and which weights a step runs on: one decision, made once per step before its parameters
resolve, for every front end (``gradfx run``, ``chain``, ``batch`` and its Ray workers, ``resume``, the TUI,
the Python API).

The model is the one the caller named (``--model``, a recipe's or a step's ``model``), else the effect's own.
Its weights are what :func:`~gradfx.engine.models.weights.resolve_weights` decides for the weights value
(``auto`` tries the ImageNet file, a download, then falls back). One rule moves a step: **the default model
follows the weights.** When the caller named no model, the weights are ``auto``, the caller set no parameter
that names the default model's layers (:attr:`Param.names_layers`), the default model would get random
weights, and the trained VGG16 (``hed``) is installed and the effect works with it, the step runs on VGG16
instead, with the effect's VGG16 defaults, and says so once (:attr:`ModelChoice.note`).

Everything this needs is known without TensorFlow for the built-in models (a plugin's model is looked up
through its hook, which imports TensorFlow). ``fetch=False`` decides without downloading anything (``gradfx
chain --check``, the TUI's forms): a missing ImageNet file whose download site answers counts as had.
"""

from __future__ import annotations

import os
from collections.abc import Collection, MutableMapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from . import trained_vgg16
from .weights import ResolvedWeights, imagenet_ways, preview_auto, resolve_weights

if TYPE_CHECKING:
    from ..effect import Effect
    from ..modelspecs import ModelSpec
    from ..registry import Registry


@dataclass(frozen=True)
class ModelChoice:
    """The model a step runs on (``spec``, by name ``model``) and the weights it gets. ``note`` is the line to
    say before any compute when the model is not the one the step would otherwise run on (it followed the
    weights); ``weights.warning`` a fall-back of the weights themselves (random weights, say)."""

    model: str
    spec: ModelSpec
    weights: ResolvedWeights
    note: str | None = None

    @property
    def notice(self) -> str | None:
        """The one line a user must hear before compute, if any: the note says it all when there is one."""
        return self.note or self.weights.warning


def choose(effect: Effect, registry: Registry, *, model: str | None = None, asked: Collection[str] = (),
           weights: str | os.PathLike = "auto", fetch: bool = True,
           decided: MutableMapping[str, ResolvedWeights] | None = None) -> ModelChoice:
    """The model and weights a step of ``effect`` runs on. ``model``: the one the caller named (None: the
    effect's own); ``asked``: the names of the parameters the caller set; ``decided``: weights already
    decided in this plan, by model name (a chain decides each model's once). Raises what
    :func:`resolve_weights` raises (a missing file, ``--weights imagenet`` with no ImageNet file...)."""
    decided = {} if decided is None else decided
    name = model or effect.model
    spec = _spec(registry, name)
    resolved = _weights(spec, weights, fetch, decided)
    if model is None and _follows(effect, asked, weights, resolved, registry):
        vgg16 = _spec(registry, trained_vgg16.MODEL)
        # the note says it all, once: not also the trained VGG16's own fall-back warning
        return ModelChoice(vgg16.name, vgg16, replace(_weights(vgg16, weights, fetch, decided), warning=None),
                           _note(effect, spec))
    return ModelChoice(name, spec, resolved)


def followed_model(effect: Effect, registry: Registry, weights: str | os.PathLike = "auto") -> str | None:
    """The model a step of ``effect`` that names no model and sets no parameter follows the weights to here
    (:func:`choose`, decided without downloading), or None when it stays on the effect's own: for front ends
    that show the defaults a run will use."""
    if effect.model is None or _keyword(weights) != "auto":  # no backbone; only auto follows (and --weights
        # imagenet missing is a run's error)
        return None
    choice = choose(effect, registry, weights=weights, fetch=False)
    return choice.model if choice.note else None


def _spec(registry: Registry, name: str) -> ModelSpec:
    return registry.known_model(name) or registry.model(name)  # a plugin's model: its hook imports TF


def _weights(spec: ModelSpec, weights: str | os.PathLike, fetch: bool,
             decided: MutableMapping[str, ResolvedWeights]) -> ResolvedWeights:
    if spec.name not in decided:
        keyword = _keyword(weights)
        if not fetch and keyword in ("auto", "imagenet"):  # as a run would decide, downloading nothing
            decided[spec.name] = preview_auto(spec, insist=keyword == "imagenet")
        else:
            decided[spec.name] = resolve_weights(spec, weights)
    return decided[spec.name]


def _keyword(weights: str | os.PathLike) -> str:
    return os.fspath(weights).strip().lower() if isinstance(weights, (str, os.PathLike)) else ""


def _follows(effect: Effect, asked: Collection[str], weights: str | os.PathLike, resolved: ResolvedWeights,
             registry: Registry) -> bool:
    """The rule of the module docstring (the caller named no model: checked by :func:`choose`)."""
    vgg16 = trained_vgg16.MODEL
    return (_keyword(weights) == "auto" and resolved.fell_back and effect.model != vgg16
            and not any(p.names_layers and p.name in asked for p in effect.schema)
            and (effect.models is None or vgg16 in effect.models)
            and registry.known_model(vgg16) is not None and trained_vgg16.locate() is not None)


def _note(effect: Effect, default: ModelSpec) -> str:
    """Why a step runs on VGG16, and how to get its default model's own trained weights."""
    vgg16 = trained_vgg16.MODEL
    ways = imagenet_ways(default)
    get = (f"for {default.name}, {ways}" if ways
           else f"--model {default.name} --weights PATH runs {default.name} on your weights")
    return (f"{effect.name}: its default model {default.name} has no trained weights here, so it runs on {vgg16} "
            f"with the HED-fine-tuned weights ({trained_vgg16.DISTRIBUTION}; not ImageNet) and {effect.name}'s "
            f"{vgg16} defaults; {get} (--model {default.name} alone keeps it, on random weights)")


__all__ = ["ModelChoice", "choose", "followed_model"]
