"""Built backbones and feature extractors: a spec built with its weights, frozen, and cut at the layers an
objective reads; both cached, so a chain (or a batch) that uses one model builds it once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ParameterError
from ..modelspecs import (
    ModelSpec,
    _as_float,
    check_layers,
    check_size,
    clear_layer_names,
    network,
    normalised,
)
from ..params import PRECISIONS
from ..registry import get_spec
from . import effect_networks, index
from .tf import keras, tf
from .weights import ResolvedWeights, apply_weights, forget_failed_downloads, resolve_weights

__all__ = ["PRECISIONS", "Extractor", "LoadedModel", "clear_cache", "get_extractor", "load_model"]


# ------------------------------------------------------------------------------------ loaded models


@dataclass(frozen=True)
class LoadedModel:
    """A built, weighted and frozen backbone."""

    spec: ModelSpec
    model: keras.Model
    weights: ResolvedWeights


_LOCK = threading.RLock()
_MODELS: dict[tuple, LoadedModel] = {}
_EXTRACTORS: dict[tuple, Extractor] = {}


def clear_cache() -> None:
    """Forget every cached model, extractor, network an effect runs itself and layer list (frees their memory)."""
    with _LOCK:
        _MODELS.clear()
        _EXTRACTORS.clear()
    effect_networks.clear_cache()
    clear_layer_names()
    forget_failed_downloads()


def _weights_key(resolved: ResolvedWeights, seed: int) -> tuple:
    if resolved.mode == "random":
        return ("random", int(seed))
    st = os.stat(resolved.path) if resolved.path else None
    return (resolved.mode, resolved.path, st.st_mtime_ns if st else None, st.st_size if st else None)


def _resolved(spec: ModelSpec, weights: str | os.PathLike[str] | ResolvedWeights, include_top: bool) -> ResolvedWeights:
    """Weights already decided (a plan's), or decided now from a weights value."""
    if isinstance(weights, ResolvedWeights):
        return weights
    return resolve_weights(spec, weights, include_top=include_top)


def load_model(
    name_or_spec: str | ModelSpec,
    weights: str | os.PathLike[str] | ResolvedWeights = "auto",
    *,
    seed: int = 0,
    include_top: bool = False,
    pooling: str = "max",
    device: str | None = None,
) -> LoadedModel:
    """Build ``name_or_spec`` with the given weights, frozen; cached per (model, weights, seed, top, pooling,
    device).

    ``seed`` only matters for random weights (including an ``auto`` fallback). ``device`` (a TensorFlow device
    string such as ``"/GPU:1"``) is where the weights live; None builds under the caller's device scope.
    """
    spec = get_spec(name_or_spec)
    resolved = _resolved(spec, weights, include_top)
    return _load_resolved(spec, resolved, seed=seed, include_top=include_top, pooling=pooling, device=device)


def _on(device: str | None) -> Any:
    """``tf.device(device)``, or no change of scope for None."""
    return tf.device(device) if device else contextlib.nullcontext()


def _load_resolved(
    spec: ModelSpec, resolved: ResolvedWeights, *, seed: int, include_top: bool, pooling: str,
    device: str | None = None,
) -> LoadedModel:
    # the device is in the key: on a multi-GPU box each GPU's worker gets weights that live on its own GPU
    key = (id(spec), _weights_key(resolved, seed), bool(include_top), pooling, device)
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None and hit.spec is spec:
            # the same network serves ``random`` and an ``auto`` that fell back to random; the record (with
            # its fallback flag and warning) is the caller's
            return hit if hit.weights == resolved else replace(hit, weights=resolved)
        with _on(device):
            # a converted package-index network has its own graph (same layer names; see ResolvedWeights.network)
            model = (normalised(index.graph(resolved.network)) if resolved.network
                     else network(spec, include_top=include_top, pooling=pooling))
            apply_weights(model, spec, resolved, seed=seed, include_top=include_top)
        model.trainable = False
        loaded = LoadedModel(spec, model, resolved)
        _MODELS[key] = loaded
        return loaded


# -------------------------------------------------------------------------------------- extractors


class Extractor:
    """Named activations of a backbone cut at the deepest requested layer.

    Call it on RGB images in [0, 1], shape (B, H, W, 3): it applies the spec's preprocessing inside, so
    gradients flow from the features back to the [0, 1] pixels, and returns ``{layer name: activation}``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        layers: tuple[str, ...],
        weights: ResolvedWeights,
        model: keras.Model,
        *,
        include_top: bool = False,
        device: str | None = None,
    ) -> None:
        self.spec = spec
        self.layers = layers
        self.weights = weights
        self.model = model
        self.include_top = include_top
        #: where the weights live (None: wherever the scope it was built in put them)
        self.device = device
        #: the compute dtype of the backbone: ``float32``, or ``bfloat16`` (see :meth:`with_precision`)
        self.precision = str(model.layers[-1].dtype_policy.compute_dtype) if model.layers else "float32"
        self._variants: dict[str, Extractor] = {self.precision: self}

    def with_precision(self, precision: str) -> Extractor:
        """This extractor with the backbone computing in ``precision`` (``float32`` or ``bfloat16``); cached.

        ``bfloat16`` clones the cut model with bfloat16 weights and activations: about 1.6x faster per step on
        CPUs with AVX512-BF16 (and on recent GPUs). Inputs stay float32 [0, 1] images and the outputs are cast
        back to float32, so objectives, gradients and the optimiser keep float32 state.
        """
        if precision not in PRECISIONS:
            raise ParameterError(f"precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
        with _LOCK:
            hit = self._variants.get(precision)
            if hit is None:
                def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
                    return layer.__class__.from_config({**layer.get_config(), "dtype": precision})

                with _on(self.device):
                    clone = keras.models.clone_model(self.model, clone_function=clone_layer)
                    clone.set_weights(self.model.get_weights())
                clone.trainable = False
                hit = Extractor(self.spec, self.layers, self.weights, clone, include_top=self.include_top,
                                device=self.device)
                hit._variants = self._variants
                self._variants[precision] = hit
            return hit

    def __call__(self, images01: Any) -> dict[str, tf.Tensor]:
        """``{layer: activation}`` for ``images01`` (B, H, W, 3) in [0, 1], run with ``training=False``."""
        x = _as_float(images01)
        if x.shape.rank != 4 or (x.shape[-1] is not None and x.shape[-1] != 3):
            raise ParameterError(
                f"images for {self.spec.name} must be (batch, height, width, 3), got {x.shape}"
            )
        h, w = x.shape[1], x.shape[2]
        if h is not None and w is not None:
            check_size(self.spec, int(h), int(w), include_top=self.include_top)
        y = self.spec.preprocess(x)
        dtype = self.model.inputs[0].dtype
        if y.dtype != dtype:
            y = tf.cast(y, dtype)
        out = self.model(y, training=False)
        if self.precision != "float32":
            return {name: tf.cast(out[name], tf.float32) for name in self.layers}
        return {name: out[name] for name in self.layers}

    def __repr__(self) -> str:
        return f"Extractor({self.spec.name}, layers={list(self.layers)}, weights={self.weights.mode})"


def get_extractor(
    model_name_or_spec: str | ModelSpec,
    layers: Sequence[str],
    weights: str | os.PathLike[str] | ResolvedWeights = "auto",
    *,
    seed: int = 0,
    pooling: str = "max",
    include_top: bool = False,
    device: str | None = None,
) -> Extractor:
    """A frozen feature extractor that outputs exactly ``layers``; cached (per ``device`` too, see
    :func:`load_model`).

    Unknown layer names raise :class:`ParameterError` with a close match.
    """
    spec = get_spec(model_name_or_spec)
    if isinstance(layers, str):
        layers = (layers,)
    wanted = tuple(dict.fromkeys(layers))
    if not wanted:
        raise ParameterError(f"no layers requested from model {spec.name}; `gradfx models {spec.name}` lists them")
    resolved = _resolved(spec, weights, include_top)
    key = (id(spec), _weights_key(resolved, seed), resolved, bool(include_top), pooling, frozenset(wanted), device)
    with _LOCK:
        hit = _EXTRACTORS.get(key)
        if hit is not None and hit.spec is spec:
            return hit
        loaded = _load_resolved(spec, resolved, seed=seed, include_top=include_top, pooling=pooling, device=device)
        full = loaded.model
        available = [layer.name for layer in full.layers if not isinstance(layer, keras.layers.InputLayer)]
        check_layers(spec, wanted, available)
        outputs = {name: full.get_layer(name).output for name in wanted}
        cut = keras.Model(inputs=full.inputs, outputs=outputs, name=f"{full.name}_extractor")
        cut.trainable = False
        extractor = Extractor(spec, wanted, resolved, cut, include_top=include_top, device=device)
        _EXTRACTORS[key] = extractor
        return extractor
