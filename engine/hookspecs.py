"""The gradfx plugin contract.

A plugin is any module or object with functions marked ``@hookimpl`` whose names match the hooks below.
Installed packages announce plugins under the ``gradfx`` entry-point group::

    [project.entry-points.gradfx]
    my_effects = "my_package.gradfx_plugin"

Hooks receive a ``register`` callable instead of returning values, so one hook can add many things and the
host can validate each one at once, naming the plugin, the hook and the offending value when it is wrong.
The built-in effects in ``gradfx.plugins`` register through exactly these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "gradfx"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    """Register image effects.

    Call ``register(effect)`` once per effect. ``effect`` is an instance of
    :class:`gradfx.engine.Effect` (or of a subclass): a unique ``name`` (lower-case, hyphens allowed), a
    one-line ``summary``, a tuple of typed ``params`` and a ``build(ctx, params)`` method that turns
    parameters and input images into a :class:`gradfx.engine.Problem` for the shared engine to solve.

    Registration is validated at once; a name already taken or a malformed effect is reported as this plugin's
    failure and the rest of the host keeps working. Return nothing.
    """


@hookspec
def gradfx_register_models(register: Callable[[Any], None]) -> None:
    """Register backbone models that effects can optimise through.

    Call ``register(spec)`` once per model with a :class:`gradfx.engine.ModelSpec`: a unique ``name``, a
    ``build`` function that returns an uncompiled Keras model without weights (or with the weights it is
    given), the differentiable ``preprocess`` from RGB in [0, 1] to the network's input and its ``deprocess``
    inverse, the layer names effects may read, the smallest input size, and where its ImageNet weights file
    lives. Return nothing.
    """
