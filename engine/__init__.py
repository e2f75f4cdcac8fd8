"""gradfx.engine: the shared gradient engine, the plugin contract and the headless API.

Names are imported lazily, so ``from gradfx.engine import Effect, Int`` does not import TensorFlow; the
names that need it (``run``, ``Problem``, objectives, models) load it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .effect import Effect, Output, RunContext
from .errors import (
    DeviceError,
    GradfxError,
    ImageError,
    JobError,
    NumericalError,
    OutputError,
    ParameterError,
    PluginError,
    RecipeError,
    UnknownEffectError,
    UnknownModelError,
    UnknownNameError,
    WeightsError,
)
from .hookspecs import hookimpl
from .layers import LayerList, Layers, parse_layer_weights
from .params import (
    Bool,
    Choice,
    Float,
    Floats,
    Image,
    ImageOr,
    Images,
    Int,
    Param,
    Precision,
    Schema,
    Str,
)
from .progress import CancelToken, ProgressCallback, ProgressEvent
from .version import __version__

_LAZY = {
    # name: module
    "run": "running.api", "run_chain": "running.api", "resume_run": "running.api", "write_report": "running.result",
    "resolve_params": "running.plan",
    "Result": "running.result", "Step": "running.plan",
    "Problem": "optimise.solver", "Solution": "optimise.solver", "solve": "optimise.solver",
    "Transform": "optimise.solver",
    "Objective": "objectives", "objective": "objectives", "StepContext": "objectives",
    "BindContext": "objectives", "gram_matrix": "objectives",
    "ModelSpec": "modelspecs", "get_extractor": "models.extractor", "load_model": "models.extractor",
    "load_image": "images.load", "save_image": "images.save", "LoadedImage": "images.load",
    "get_registry": "registry", "Registry": "registry",
    "run_batch": "batch", "BatchSummary": "batch", "BatchEvent": "batch",
    "Previous": "temporal.frames", "run_frames": "running.api",
    "Recipe": "running.recipes", "load_recipe": "running.recipes", "save_recipe": "running.recipes",
    "run_recipe": "running.recipes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradfx.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "__version__", "Effect", "Output", "RunContext", "hookimpl", "Param", "Schema", "Int", "Float", "Floats", "Bool", "Str",
    "Choice", "Image", "ImageOr", "Images", "Layers", "LayerList", "parse_layer_weights", "Precision", "CancelToken", "ProgressCallback", "ProgressEvent", "GradfxError",
    "ImageError", "ParameterError", "UnknownEffectError", "UnknownModelError", "UnknownNameError", "PluginError", "WeightsError", "DeviceError",
    "RecipeError", "NumericalError", "OutputError", "JobError", *_LAZY,
]
