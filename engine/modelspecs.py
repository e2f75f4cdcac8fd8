"""Backbone specs: what the engine needs to know about a model, and the built-in ones.

A :class:`ModelSpec` describes a backbone once: how to build it (:mod:`.extractor` builds it), its
differentiable preprocessing and the exact inverse, the smallest input it accepts (:func:`check_size`, the one
minimum-size check), the layers effects may read and where its ImageNet weights live (:mod:`.weights`
resolves them). :data:`BUILTIN_MODELS` are VGG19, VGG16, InceptionV3 and EfficientNet-Lite0 (a classifier); plugins register more through the
model hook. Importing this module does not import TensorFlow: the builders and preprocessing functions import
it when called.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ParameterError, suggest
from .images.arrays import longest_shape
from .models.device import quiet_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["BUILTIN_MODELS", "EFFICIENTNET_LITE0", "INCEPTION_V3", "VGG16", "VGG19", "ModelSpec", "caffe_deprocess", "caffe_preprocess",
           "check_layers", "check_min_size", "check_size", "clear_layer_names", "larger_size", "network", "normalised", "tf_deprocess",
           "tf_preprocess"]

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
    #: the MD5 of the ImageNet files (Keras' own ``file_hash``): a download is trusted only when it matches
    imagenet_md5: str | None = None
    imagenet_top_md5: str | None = None
    top_size: int | None = None
    pooling_choices: tuple[str, ...] = ("max",)
    layer_filter: Callable[[keras.layers.Layer], bool] | None = None

    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers effects may read, in network order (built once, then cached)."""
        return self._layers()[0]

    def check_layers(self, names: Iterable[str]) -> None:
        """The one "the model has these layers" check (a feature extractor makes it too): a
        :class:`ParameterError` naming the first of ``names`` that is no layer of the network, with a close
        match and the command that lists them; its ``layer`` attribute is that name (the caller names the
        parameter). Builds the network once, without weights, to list its layers."""
        check_layers(self, names, self._layers()[1])

    def _layers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(:meth:`layer_names`, every layer's name but the input's), from one build without weights."""
        quiet_tensorflow()  # the first build may be the first use of TensorFlow: keep its start-up log off
        import keras

        with _LOCK:
            hit = _LAYER_NAMES.get(id(self))
            if hit is not None and hit[0] is self:
                return hit[1]
        pooling = self.pooling_choices[0]
        model = network(self, include_top=False, pooling=pooling)
        keep = self.layer_filter or _default_layer_filter
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        names = (tuple(layer.name for layer in layers if keep(layer)), tuple(layer.name for layer in layers))
        with _LOCK:
            _LAYER_NAMES[id(self)] = (self, names)
            _SPARE[(id(self), False, pooling)] = (self, model)  # for the run that follows: see network()
        return names


def check_layers(spec: ModelSpec, names: Iterable[str], available: Sequence[str]) -> None:
    """:meth:`ModelSpec.check_layers` against ``available`` (a network built with its classifier top has more)."""
    for name in names:
        if name not in available:
            error = ParameterError(f"unknown layer {name!r} for model {spec.name}{suggest(name, available)}; "
                                   f"`gradfx models {spec.name}` lists its layers")
            error.layer = name  # type: ignore[attr-defined]
            raise error


def _default_layer_filter(layer: keras.layers.Layer) -> bool:
    import keras

    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer)


def _inception_layer_filter(layer: keras.layers.Layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.Activation, keras.layers.Concatenate))


# ----------------------------------------------------------------------------------- the network


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


def network(spec: ModelSpec, *, include_top: bool, pooling: str) -> keras.Model:
    """``spec``'s network without weights, its auto-named layers named as in a fresh Keras session. The network
    built to list a model's layers (:meth:`ModelSpec.layer_names`) is handed to the first caller that asks for
    the same one, so a run that checks its layers and then loads its weights builds the graph once."""
    quiet_tensorflow()
    with _LOCK:
        spare = _SPARE.pop((id(spec), include_top, pooling), None)
    if spare is not None and spare[0] is spec:
        return spare[1]
    if pooling not in spec.pooling_choices:
        raise ParameterError(
            f"pooling {pooling!r} for model {spec.name}: choose from {', '.join(spec.pooling_choices)}"
        )
    return normalised(spec.build(include_top=include_top, pooling=pooling))


def normalised(model: keras.Model) -> keras.Model:
    """``model`` with its auto-named layers named as in a fresh Keras session (see :func:`_normalise_names`)."""
    _normalise_names(model)
    return model


# ------------------------------------------------------------------------------------- preprocessing

_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def _as_float(x: Any) -> tf.Tensor:
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    return x if x.dtype.is_floating else tf.cast(x, tf.float32)


def caffe_preprocess(x: Any) -> tf.Tensor:
    """VGG ("caffe") preprocessing: RGB in [0, 1] -> BGR in [0, 255] minus the ImageNet mean. Differentiable."""
    import tensorflow as tf

    x = _as_float(x)
    mean = tf.constant(_IMAGENET_BGR_MEAN, dtype=x.dtype)
    return x[..., ::-1] * tf.constant(255.0, x.dtype) - mean


def caffe_deprocess(y: Any) -> tf.Tensor:
    """Exact inverse of :func:`caffe_preprocess`: mean-shifted BGR -> RGB in [0, 1] (not clipped)."""
    import tensorflow as tf

    y = _as_float(y)
    mean = tf.constant(_IMAGENET_BGR_MEAN, dtype=y.dtype)
    return ((y + mean) / tf.constant(255.0, y.dtype))[..., ::-1]


def tf_preprocess(x: Any) -> tf.Tensor:
    """Inception ("tf") preprocessing: [0, 1] -> [-1, 1]. Differentiable."""
    import tensorflow as tf

    x = _as_float(x)
    return x * tf.constant(2.0, x.dtype) - tf.constant(1.0, x.dtype)


def tf_deprocess(y: Any) -> tf.Tensor:
    """Exact inverse of :func:`tf_preprocess`: [-1, 1] -> [0, 1] (not clipped)."""
    import tensorflow as tf

    y = _as_float(y)
    return (y + tf.constant(1.0, y.dtype)) / tf.constant(2.0, y.dtype)


# ---------------------------------------------------------------------------------------- builders

_VGG16_BLOCKS = (2, 2, 3, 3, 3)
_VGG19_BLOCKS = (2, 2, 4, 4, 4)
_VGG_FILTERS = (64, 128, 256, 512, 512)


def _vgg_builder(name: str, blocks: tuple[int, ...]) -> Callable[..., keras.Model]:
    def build(include_top: bool = False, pooling: str = "max") -> keras.Model:
        """The Keras-application VGG graph (same layer names and weight order), max or average pooling."""
        import keras

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
    import keras

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
    imagenet_md5="253f8cb515780f3b799900260a226db6",
    imagenet_top_md5="cbe5617147190e668d6c5d5026f83318",
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
    imagenet_md5="6d6bbae143d832006294945121d1f1fc",
    imagenet_top_md5="64373286793e3c8b2b4e3219cbf3544b",
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
    imagenet_md5="bcbd6486424b2319ff4ef7d526e38f63",
    imagenet_top_md5="9a0d58056eeedaa3f26cb7ebd46da564",
    top_size=299,
    pooling_choices=("max",),
    layer_filter=_inception_layer_filter,
)

def _build_efficientnet_lite0(include_top: bool = False, pooling: str = "max") -> keras.Model:
    """EfficientNet-Lite0's graph without weights, always with its classifier (the extractor cuts it where
    an objective reads: its top is a global average pool, so it reads any size)."""
    from .models.index.efficientnet import build_efficientnet_lite0

    if pooling != "max":
        raise ParameterError(f"pooling {pooling!r} for efficientnet_lite0: only 'max' (its own pooling)")
    return build_efficientnet_lite0()


def _lite_preprocess(x: Any) -> tf.Tensor:
    """EfficientNet-Lite's preprocessing: RGB in [0, 1] -> ``(255 x - 127) / 128``. Differentiable."""
    import tensorflow as tf

    x = _as_float(x)
    return (x * tf.constant(255.0, x.dtype) - tf.constant(127.0, x.dtype)) / tf.constant(128.0, x.dtype)


def _lite_deprocess(y: Any) -> tf.Tensor:
    """Exact inverse of :func:`_lite_preprocess` (not clipped)."""
    import tensorflow as tf

    y = _as_float(y)
    return (y * tf.constant(128.0, y.dtype) + tf.constant(127.0, y.dtype)) / tf.constant(255.0, y.dtype)


def _lite_layer_filter(layer: keras.layers.Layer) -> bool:
    """The layers worth reading: each block's output, the head's activation, the logits and predictions."""
    name = layer.name
    return (name.endswith(("_add", "_project_bn")) or name in ("stem_activation", "top_activation", "logits",
                                                                "predictions"))


EFFICIENTNET_LITE0 = ModelSpec(
    name="efficientnet_lite0",
    summary="EfficientNet-Lite0 (Tan & Le 2019): the ImageNet classifier, for class objectives (logit(N))",
    build=_build_efficientnet_lite0,
    preprocess=_lite_preprocess,
    deprocess=_lite_deprocess,
    input_range=(-127.0 / 128.0, 1.0),
    min_size=32,
    default_layers=("block3b_add", "block4c_add", "block5c_add", "block6d_add"),
    top_size=224,
    pooling_choices=("max",),
    layer_filter=_lite_layer_filter,
)

BUILTIN_MODELS: tuple[ModelSpec, ...] = (VGG19, VGG16, INCEPTION_V3, EFFICIENTNET_LITE0)


# ----------------------------------------------------------------------------------------- lookup

_LOCK = threading.RLock()
_LAYER_NAMES: dict[int, tuple[ModelSpec, tuple[tuple[str, ...], tuple[str, ...]]]] = {}
#: a network built to list its layers, kept for the first run that builds the same one (:func:`network`)
_SPARE: dict[tuple[int, bool, str], tuple[ModelSpec, keras.Model]] = {}


def clear_layer_names() -> None:
    """Forget the cached layer lists (:meth:`ModelSpec.layer_names`) and any network kept with them."""
    with _LOCK:
        _LAYER_NAMES.clear()
        _SPARE.clear()



def check_min_size(min_size: int, *, model: str = "the model", size: tuple[int, int] | None = None,
                   param: str | None = None, value: int = 0, zero: str | None = None, what: str = "image size",
                   fix: str = "use a larger size", where: str = "") -> None:
    """The one minimum-size check: a :class:`ParameterError` when an image ``size`` (height, width), or the
    pixel ``value`` of parameter ``param``, is below ``min_size`` px, the smallest input of ``model``.

    A parameter's 0 is allowed when ``zero`` says what it means (``tile``: "the whole image"). For an image,
    the message names the short side when only one is, ``what`` the image is and the ``fix``; ``where`` goes
    before it all.
    """
    loc = f"{where}: " if where else ""
    if param is not None:
        if value < min_size and not (value == 0 and zero):
            expected = f"0 ({zero}) or at least {min_size}" if zero else f"at least {min_size}"
            raise ParameterError(f"{loc}parameter {param!r}: {value} is below {model}'s minimum input of {min_size} "
                                 f"px; expected {expected}")
        return
    assert size is not None
    h, w = size
    short = [f" (its {side} is {n} px)" for side, n in (("width", w), ("height", h)) if n < min_size]
    if short:  # WxH already says both sides: the one below the minimum is named when the other is not
        raise ParameterError(f"{loc}{what} {w}x{h} is below {model}'s minimum of {min_size} px on each side"
                             f"{short[0] if len(short) == 1 else ''}; {fix}")


def check_size(spec: ModelSpec, h: int, w: int, *, include_top: bool = False) -> None:
    """Raise :class:`ParameterError` when an ``h`` x ``w`` image is too small (or, with the top, not its size)."""
    if include_top and spec.top_size is not None:
        if (h, w) != (spec.top_size, spec.top_size):
            raise ParameterError(
                f"image is {w}x{h} px but {spec.name} with its classifier top takes exactly "
                f"{spec.top_size}x{spec.top_size}; resize it or drop the top"
            )
        return
    check_min_size(spec.min_size, model=spec.name, size=(h, w), fix=larger_size(spec.min_size, (h, w)))


def larger_size(min_size: int, size: tuple[int, int] | None = None) -> str:
    """The fix for an image below a model's ``min_size``: ``--size`` resizes the input (up too) to that longest
    side. For an ``size`` = (height, width) image, one whose shorter side then reaches ``min_size`` (a 60x40
    frame needs --size 112 for InceptionV3's 75 px, not the --size 75 that made it 75x50)."""
    longest = max(min_size, 64)
    if size is not None and min(size) > 0:
        fits = math.floor((min_size - 1) * max(size) / min(size))  # the shorter side rounds: count up from below
        while min(longest_shape(*size, fits)) < min_size:
            fits += 1
        longest = max(longest, fits)
    return f"use a larger size (e.g. --size {longest})"
