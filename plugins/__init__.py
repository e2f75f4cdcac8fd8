"""The built-in gradfx plugin: the built-in effects and backbone models.

They register through exactly the hooks a third-party plugin uses (see ``gradfx.engine.hookspecs``). Each
effect lives in its own module here and lists its instances in a module-level ``EFFECTS`` tuple; effect
modules import TensorFlow only when an effect runs, so listing effects stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from gradfx.engine import hookimpl


@hookimpl
def gradfx_register_models(register: Callable[[Any], None]) -> None:
    from gradfx.engine.modelspecs import BUILTIN_MODELS

    for spec in BUILTIN_MODELS:
        register(spec)


@hookimpl
def gradfx_register_effects(register: Callable[[Any], None]) -> None:
    failed = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:  # one broken module must not hide the other built-in effects
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # noqa: BLE001
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
            continue
        for effect in getattr(module, "EFFECTS", ()):
            register(effect)
    if failed:
        raise ImportError("built-in effect modules failed to import: " + "; ".join(failed))
