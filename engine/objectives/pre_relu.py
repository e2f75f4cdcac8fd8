"""Pre-ReLU (virtual) layers: ``LAYER_pre_relu``, the value a layer holds before its ReLU, which the backbone
does not output (lucid's ``mixed4a_pre_relu``): computed from real layers each step, and an objective reading
them rewritten to read real layers only (:func:`with_virtual_layers`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError
from ..models.tf import tf
from .base import BindContext, Features, Objective

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
