"""The built-in gradfx plugin: the built-in effects and backbone models.

They register through exactly the hooks a third-party plugin uses (see ``gradfx.engine.hookspecs``). Effect
modules import TensorFlow only when an effect runs, so listing effects stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradfx.engine import hookimpl


@hookimpl
def gradfx_register_models(register: Callable[[Any], None]) -> None:
    from gradfx.engine.models import BUILTIN_MODELS

    for spec in BUILTIN_MODELS:
        register(spec)


@hookimpl
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    for effect in _builtin_effects():
        register(effect)


def _builtin_effects() -> list[Any]:
    effects: list[Any] = []
    return effects
