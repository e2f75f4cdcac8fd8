"""The model zoo's former single module, kept so code that imports from ``gradfx.engine.models`` (plugins
that define a :class:`ModelSpec` with ``tf_preprocess``, say) keeps working. Its parts now live in
:mod:`.modelspecs` (specs, preprocessing, the built-in models), :mod:`.weights` (which weights a model gets)
and :mod:`.extractor` (built models and feature extractors).
"""

from __future__ import annotations

from .extractor import PRECISIONS, Extractor, LoadedModel, clear_cache, get_extractor, load_model
from .modelspecs import (
    BUILTIN_MODELS,
    INCEPTION_V3,
    VGG16,
    VGG19,
    ModelSpec,
    caffe_deprocess,
    caffe_preprocess,
    check_size,
    get_spec,
    tf_deprocess,
    tf_preprocess,
)
from .weights import WEIGHT_MODES, ResolvedWeights, keras_models_dir, preview_auto, resolve_weights

__all__ = [
    "BUILTIN_MODELS",
    "INCEPTION_V3",
    "VGG16",
    "VGG19",
    "WEIGHT_MODES",
    "Extractor",
    "LoadedModel",
    "ModelSpec",
    "PRECISIONS",
    "ResolvedWeights",
    "caffe_deprocess",
    "caffe_preprocess",
    "check_size",
    "clear_cache",
    "get_extractor",
    "get_spec",
    "keras_models_dir",
    "load_model",
    "preview_auto",
    "resolve_weights",
    "tf_deprocess",
    "tf_preprocess",
]
