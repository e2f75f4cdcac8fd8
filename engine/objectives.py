"""Composable objectives.

An objective is a small object: the layers it reads, a readable description, an optional ``bind`` step that
computes targets once per stage (behind ``stop_gradient``), and a function from layer activations to a
scalar. Objectives compose with ``+``, ``-``, unary ``-``, ``k * a`` and ``a * b``::

    obj = channel("block4_conv1", 12) - 0.5 * channel("block4_conv1", 3)
    str(obj)  # 'channel(block4_conv1, 12) - 0.5 * channel(block4_conv1, 3)'

Declaring an objective is separate from building it against a model: the engine builds a feature extractor
cut at the deepest layer in ``obj.layers`` and calls ``obj.bind(ctx)`` before the first step of each stage.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ParameterError
from .models.tf import tf

Features = Mapping[str, tf.Tensor]


@dataclass
class StepContext:
    """What an objective sees at each step besides the activations.

    ``image`` is the (transformed, quantised) batch in [0, 1] that went into the network; ``aligned`` holds
    the problem's aligned images (e.g. the content image) cropped and shifted exactly like ``image``.
    """

    image: tf.Tensor
    aligned: Mapping[str, tf.Tensor] = field(default_factory=dict)


@dataclass
class BindContext:
    """What ``Objective.bind`` gets once per stage: the stage's canvas size and a way to get activations."""

    size: tuple[int, int]
    features: Callable[[Any], Features]
    stage: int = 0
    aligned: Mapping[str, tf.Tensor] = field(default_factory=dict)
    #: the tile size this stage runs with (0: the whole image at once): a step then sees tile crops, and
    #: targets from aligned images must be computed per crop rather than once here
    tile: int = 0


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


# --- generic objectives --------------------------------------------------------------------------------------
@objective
def channel(layer: str, n: int, batch: int | None = None) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` (over positions, and over the batch unless ``batch``)."""
    return Objective(lambda f, c: tf.reduce_mean(_batch(f[layer], batch)[..., n]), "", {layer})


@objective
def neuron(layer: str, n: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """Activation of channel ``n`` at one position of ``layer`` (the centre unless ``x``/``y`` are given)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        shape = tf.shape(t)
        yy = shape[1] // 2 if y is None else y
        xx = shape[2] // 2 if x is None else x
        return tf.reduce_mean(t[:, yy, xx, n])

    return Objective(fn, "", {layer})


@objective
def layer_mean(layer: str, batch: int | None = None, border: int = 0) -> Objective:
    """Mean activation of a whole layer, optionally ignoring ``border`` positions on each side (the Keras
    DeepDream example's loss, which avoids border artefacts)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        if border:
            t = t[:, border:-border, border:-border, :]
        return tf.reduce_mean(t)

    return Objective(fn, "", {layer})


@objective
def layer_l2(layer: str, batch: int | None = None) -> Objective:
    """Mean squared activation of a whole layer (lucid's ``deepdream`` objective)."""
    return Objective(lambda f, c: tf.reduce_mean(tf.square(_batch(f[layer], batch))), "", {layer})


@objective
def total_variation(batch: int | None = None) -> Objective:
    """Mean absolute difference between neighbouring pixels of the image (lower is smoother)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        x = _batch(c.image, batch)
        return tf.reduce_mean(tf.abs(x[:, 1:, :, :] - x[:, :-1, :, :])) + tf.reduce_mean(
            tf.abs(x[:, :, 1:, :] - x[:, :, :-1, :])
        )

    return Objective(fn, "")


@objective
def l1(constant: float = 0.5, batch: int | None = None) -> Objective:
    """Mean absolute deviation of the pixels from ``constant`` (lucid's L1 regulariser)."""
    return Objective(lambda f, c: tf.reduce_mean(tf.abs(_batch(c.image, batch) - constant)), "")


@objective
def blur(batch: int | None = None) -> Objective:
    """Squared distance of the image from its 3x3 box-blurred self (lower is smoother); the blur is a target,
    not differentiated through, as in lucid's ``blur_input_each_step``."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        x = _batch(c.image, batch)
        kernel = tf.ones((3, 3, 1, 1), x.dtype) / 9.0
        kernel = tf.tile(kernel, [1, 1, x.shape[-1] or 3, 1])
        blurred = tf.nn.depthwise_conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"), kernel,
                                         [1, 1, 1, 1], "VALID")
        return tf.reduce_mean(tf.square(x - tf.stop_gradient(blurred)))

    return Objective(fn, "")


@objective
def direction(layer: str, vector: Any, cossim_pow: float = 0.0, batch: int | None = None) -> Objective:
    """Activations of ``layer`` along ``vector`` (one weight per channel): lucid's ``direction``, the mean dot
    product over positions, times the cosine similarity to the power ``cossim_pow`` when it is > 0."""
    vec = tf.constant(vector, tf.float32)
    if vec.shape.rank != 1 or not vec.shape[0]:
        raise ParameterError(f"direction({layer}, ...): the vector must be 1-D and non-empty, got shape {vec.shape}")

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        if t.shape[-1] is not None and t.shape[-1] != vec.shape[0]:
            raise ParameterError(f"direction({layer}, ...): the vector has {vec.shape[0]} values but layer "
                                 f"{layer} has {t.shape[-1]} channels")
        t = tf.cast(t, tf.float32)
        dot = tf.reduce_sum(t * vec, -1)
        if not cossim_pow:
            return tf.reduce_mean(dot) / vec.shape[0]  # = mean over positions and channels of t * vec
        cossim = dot / (1e-4 + tf.norm(t, axis=-1) * tf.norm(vec))
        return tf.reduce_mean(dot * tf.maximum(cossim, 0.1) ** cossim_pow)

    return Objective(fn, "", {layer})


@objective
def diversity(layer: str) -> Objective:
    """How different the batch's images are at ``layer``: minus the mean cosine similarity between the Gram
    matrices of every pair of images (lucid's ``diversity``, with the sign flipped so higher is more diverse:
    maximise ``channel(...) + k * diversity(...)``). Zero for a batch of one."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = tf.cast(f[layer], tf.float32)
        b = tf.shape(t)[0]
        flat = tf.reshape(t, tf.stack([b, -1, tf.shape(t)[-1]]))
        grams = tf.reshape(tf.matmul(flat, flat, transpose_a=True), tf.stack([b, -1]))
        grams = tf.math.l2_normalize(grams, axis=1, epsilon=1e-10)
        sims = tf.matmul(grams, grams, transpose_b=True)  # (B, B) cosine similarities
        bf = tf.cast(b, tf.float32)
        pairs = tf.maximum(bf * (bf - 1.0), 1.0)
        return -(tf.reduce_sum(sims) - tf.linalg.trace(sims)) / pairs

    return Objective(fn, "", {layer})


def logit(n: int, layer: str, kernel: Any, bias: Any, batch: int | None = None) -> Objective:
    """Class ``n``'s pre-softmax score: ``layer`` (the classifier's penultimate activations) times column ``n``
    of the final dense layer's ``kernel``, plus ``bias[n]``. Maximising the logit rather than the softmax
    probability keeps the objective from winning by suppressing the other classes."""
    w = tf.constant(kernel[:, n], tf.float32)
    b = float(bias[n]) if bias is not None else 0.0

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = tf.cast(_batch(f[layer], batch), tf.float32)
        t = tf.reshape(t, tf.stack([tf.shape(t)[0], -1]))
        return tf.reduce_mean(tf.linalg.matvec(t, w)) + b

    return Objective(fn, f"logit({n})", {layer})


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Gram matrices of (B, H, W, C) activations, divided by the number of positions H*W -> (B, C, C).

    This is the TensorFlow style-transfer tutorial's normalisation: the result does not depend on the image
    size, so a style target computed at one size applies at another.
    """
    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    locations = tf.cast(shape[1] * shape[2], features.dtype)
    # A batched matmul over (B, H*W, C): the same sum as einsum("bijc,bijd->bcd"), ~1.4x faster on CPU.
    flat = tf.reshape(features, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    return tf.linalg.matmul(flat, flat, transpose_a=True) / locations


# --- pre-ReLU (virtual) layers -------------------------------------------------------------------------------
#: ``LAYER + PRE_RELU`` names the value ``LAYER`` holds before its ReLU (lucid's ``mixed4a_pre_relu``)
PRE_RELU = "_pre_relu"


@dataclass(frozen=True)
class VirtualLayer:
    """A layer an objective may read that the backbone does not output: computed from real ``inputs``.

    ``post`` is the real layer that equals ``relu`` of this one; an objective reading both gets ``post``
    derived from this value instead of a second pass through the layer.
    """

    name: str
    inputs: tuple[str, ...]
    fn: Callable[[list[tf.Tensor]], tf.Tensor]
    channels: int
    post: str | None = None


def _inbound(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    if not history:
        raise ParameterError(f"cannot find the layer feeding {tensor!r}")
    return history[0].name


def _is_relu(layer: Any) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", "") == "relu"


def pre_relu_layer(model: Any, name: str) -> VirtualLayer:
    """``LAYER_pre_relu`` for a Keras ``model``: the value of ``LAYER`` before its ReLU.

    ``LAYER`` may be a convolution or dense layer with a fused ReLU (every VGG conv layer: the same kernel and
    bias applied to the layer's input, without the activation), an ``Activation("relu")`` layer (its input), or
    a concatenation of such layers (InceptionV3's ``mixedN`` blocks: the branches' pre-ReLU values,
    concatenated). A channel that never fires has zero gradient through its ReLU; its pre-ReLU value has a
    gradient everywhere, so maximising it can wake the channel up. Raises :class:`ParameterError` when
    ``LAYER`` has no ReLU to look before.
    """
    import keras

    if not name.endswith(PRE_RELU):
        raise ParameterError(f"{name!r} is not a pre-ReLU layer name (LAYER{PRE_RELU})")
    base = name[: -len(PRE_RELU)]
    try:
        layer = model.get_layer(base)
    except ValueError:
        raise ParameterError(f"unknown layer {base!r} in {name!r}") from None
    channels = int(layer.output.shape[-1])
    if isinstance(layer, keras.layers.Concatenate) and isinstance(layer.input, (list, tuple)):
        parts = [pre_relu_layer(model, _inbound(t) + PRE_RELU) for t in layer.input]
        axis, sizes = layer.axis, [len(p.inputs) for p in parts]

        def concat(xs: list[tf.Tensor]) -> tf.Tensor:
            out, i = [], 0
            for part, n in zip(parts, sizes, strict=True):
                out.append(part.fn(xs[i : i + n]))
                i += n
            return tf.concat(out, axis=axis)

        return VirtualLayer(name, tuple(i for p in parts for i in p.inputs), concat, channels, base)
    if not _is_relu(layer):
        raise ParameterError(f"layer {base!r} ({type(layer).__name__}) has no ReLU, so {name!r} means nothing; "
                             f"pre-ReLU values exist for conv / dense layers with a ReLU, ReLU activations and "
                             f"concatenations of them")
    source = _inbound(layer.input)
    if isinstance(layer.input, (list, tuple)) or isinstance(model.get_layer(source), keras.layers.InputLayer):
        raise ParameterError(f"{name!r}: layer {base!r} reads the network's input, which an objective cannot see; "
                             f"use a later layer")
    if isinstance(layer, keras.layers.Activation):
        return VirtualLayer(name, (source,), lambda xs: xs[0], channels, base)
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ParameterError(f"{name!r}: layer {base!r} is channels_first; only channels_last layers are supported")
    bias = layer.bias if getattr(layer, "use_bias", False) else None
    if hasattr(layer, "convolution_op"):
        def linear(xs: list[tf.Tensor]) -> tf.Tensor:
            return layer.convolution_op(xs[0], tf.cast(layer.kernel, xs[0].dtype))
    elif isinstance(layer, keras.layers.Dense):
        def linear(xs: list[tf.Tensor]) -> tf.Tensor:
            return tf.tensordot(xs[0], tf.cast(layer.kernel, xs[0].dtype), 1)
    else:
        raise ParameterError(f"{name!r}: layer {base!r} ({type(layer).__name__}) fuses a ReLU into an operation "
                             f"gradfx cannot repeat; use a convolution, dense or Activation layer")

    def fn(xs: list[tf.Tensor]) -> tf.Tensor:
        y = linear(xs)
        return y if bias is None else y + tf.cast(bias, y.dtype)

    return VirtualLayer(name, (source,), fn, channels, base)


def with_virtual_layers(obj: Objective, virtual: Sequence[VirtualLayer]) -> Objective:
    """``obj`` reading real layers only: each virtual layer it names is computed from its inputs each step
    (and in ``bind``), and a real layer that is ``relu`` of one of them is derived from it. The description is
    ``obj``'s."""
    used = {v.name: v for v in virtual if v.name in obj.layers}
    if not used:
        return obj
    derived = {v.post: v.name for v in used.values() if v.post and v.post in obj.layers}
    reads = (obj.layers - set(used) - set(derived)) | {i for v in used.values() for i in v.inputs}

    def expand(f: Features) -> dict[str, tf.Tensor]:
        out = dict(f)
        for v in used.values():
            out[v.name] = v.fn([f[i] for i in v.inputs])
        for post, pre in derived.items():
            out[post] = tf.nn.relu(out[pre])
        return out

    def bind(ctx: BindContext) -> None:
        obj.bind(dataclasses.replace(ctx, features=lambda x: expand(ctx.features(x))))

    return Objective(lambda f, c: obj(expand(f), c), obj.description, reads, bind=bind, precedence=obj.precedence)
