"""Composable objectives.

An objective is a small object: the layers it reads, a readable description, an optional ``bind`` step that
computes targets once per stage (behind ``stop_gradient``), and a function from layer activations to a
scalar. Objectives compose with ``+``, ``-``, unary ``-``, ``k * a`` and ``a * b``::

    obj = channel("block4_conv1", 12) - 0.5 * channel("block4_conv1", 3)
    str(obj)  # 'channel(block4_conv1, 12) - 0.5 * channel(block4_conv1, 3)'

Declaring an objective is separate from building it against a model: the engine builds a feature extractor
cut at the deepest layer in ``obj.layers`` and calls ``obj.bind(ctx)`` before the first step of each stage.

- :mod:`.base`: :class:`Objective`, the ``@objective`` naming decorator, :class:`StepContext` (what the
  function sees each step) and :class:`BindContext` (what ``bind`` sees each stage);
- :mod:`.generic`: ``channel``, ``neuron``, ``layer_mean``, ``layer_l2``, ``direction``, ``diversity``,
  ``logit``, and the regularisers ``total_variation``, ``l1``, ``blur``;
- :mod:`.style`: ``gram_matrix``, ``gram_targets``, ``style_loss`` (Gatys et al.'s, whole or tiled);
- :mod:`.pre_relu`: ``LAYER_pre_relu`` values the backbone does not output.
"""

from __future__ import annotations

from .base import BindContext, Features, Objective, StepContext, objective
from .generic import (
    blur,
    channel,
    direction,
    diversity,
    l1,
    layer_l2,
    layer_mean,
    logit,
    neuron,
    total_variation,
)
from .pre_relu import PRE_RELU, VirtualLayer, pre_relu_layer, with_virtual_layers
from .style import StyleLoss, gram_matrix, gram_targets, style_loss, style_size

__all__ = [
    "PRE_RELU", "BindContext", "Features", "Objective", "StepContext", "StyleLoss", "VirtualLayer", "blur",
    "channel", "direction", "diversity", "gram_matrix", "gram_targets", "l1", "layer_l2", "layer_mean", "logit",
    "neuron", "objective", "pre_relu_layer", "style_loss", "style_size", "total_variation", "with_virtual_layers",
]
