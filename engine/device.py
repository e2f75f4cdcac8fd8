"""Device selection and TensorFlow's log noise.

TensorFlow is imported lazily here, so :func:`quiet_tensorflow` can run before the first TF import (its C++
logging reads ``TF_CPP_MIN_LOG_LEVEL`` once, when the library loads).
"""

from __future__ import annotations

import logging
import os
import re
import threading

from .errors import DeviceError

__all__ = ["DEVICE_FORMS", "device_name", "quiet_tensorflow", "select_device"]

DEVICE_FORMS = "auto, cpu, gpu or gpu:N"
_NO_GPU = "no GPU visible to TensorFlow; use --device cpu, or install tensorflow[and-cuda]"
_PATTERN = re.compile(r"^/?(?:device:)?(cpu|gpu)(?::(\d+))?$", re.IGNORECASE)
_growth_lock = threading.Lock()
_growth_done = False


def quiet_tensorflow() -> None:
    """Keep TensorFlow's log noise off the terminal: call it before TensorFlow is imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it), absl's verbosity and the ``tensorflow``
    Python logger to ERROR. Safe to call more than once; it does not import TensorFlow.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quieten
        pass


def _parse(device: str | None) -> tuple[str, int | None]:
    """("auto", None) | ("cpu", None) | ("gpu", N or None); DeviceError on bad syntax."""
    if device is None:
        return "auto", None
    if not isinstance(device, str):
        raise DeviceError(f"device {device!r}: use {DEVICE_FORMS}")
    text = device.strip()
    if text.lower() in ("", "auto"):
        return "auto", None
    match = _PATTERN.match(text)
    if not match:
        raise DeviceError(f"unknown device {device!r}: use {DEVICE_FORMS}")
    kind = match.group(1).lower()
    index = int(match.group(2)) if match.group(2) is not None else None
    if kind == "cpu" and index not in (None, 0):
        raise DeviceError(f"unknown device {device!r}: TensorFlow has one CPU device; use cpu")
    return kind, index


def _gpus() -> list:
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def _enable_memory_growth() -> None:
    """Let every visible GPU grow its memory on demand (only possible before the GPUs are initialised)."""
    global _growth_done
    with _growth_lock:
        if _growth_done:
            return
        import tensorflow as tf

        for gpu in _gpus():
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: TF keeps its first setting
                pass
        _growth_done = True


def select_device(device: str | None = None) -> str:
    """The TensorFlow device string (``"/CPU:0"``, ``"/GPU:1"``) for ``auto`` / ``cpu`` / ``gpu`` / ``gpu:N``.

    ``None`` or ``"auto"`` picks the first GPU when there is one, else the CPU. Turns on memory growth for
    every visible GPU. Raises :class:`DeviceError` for bad syntax or a GPU that is not there.
    """
    kind, index = _parse(device)
    if kind == "cpu":
        return "/CPU:0"
    gpus = _gpus()
    if gpus:
        _enable_memory_growth()
    if kind == "auto":
        return "/GPU:0" if gpus else "/CPU:0"
    if not gpus:
        raise DeviceError(_NO_GPU)
    index = 0 if index is None else index
    if index >= len(gpus):
        raise DeviceError(
            f"GPU {index} is not visible to TensorFlow, which sees {len(gpus)} GPU(s): "
            f"use gpu:0 to gpu:{len(gpus) - 1}"
        )
    return f"/GPU:{index}"


def device_name(device: str | None = None) -> str:
    """A human name for a device: ``"CPU"`` or ``"GPU:0 (NVIDIA A100-SXM4-40GB)"``."""
    resolved = select_device(device)
    if resolved.startswith("/CPU"):
        return "CPU"
    import tensorflow as tf

    index = int(resolved.rsplit(":", 1)[1])
    try:
        details = tf.config.experimental.get_device_details(_gpus()[index])
    except (RuntimeError, ValueError, IndexError):
        details = {}
    label = details.get("device_name")
    return f"GPU:{index} ({label})" if label else f"GPU:{index}"
