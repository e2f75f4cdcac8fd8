"""Device selection and TensorFlow's log noise.

TensorFlow is imported lazily, by :func:`quiet_tensorflow`, so that its C++ logging is configured before the
library loads and the lines it prints while loading stay off the terminal.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import sys
import tempfile
import threading

from ..errors import DeviceError

__all__ = ["DEVICE_FORMS", "device_name", "native_bfloat16", "parse_device", "quiet_tensorflow", "select_device"]

DEVICE_FORMS = "auto, cpu, gpu or gpu:N"
_NO_GPU = "no GPU visible to TensorFlow; use --device cpu, or install tensorflow[and-cuda]"
_PATTERN = re.compile(r"^/?(?:device:)?(cpu|gpu)(?::(\d+))?$", re.IGNORECASE)
_growth_lock = threading.Lock()
_growth_done = False
#: where Linux lists the CPU's flags (:func:`native_bfloat16`)
CPUINFO = "/proc/cpuinfo"


@functools.lru_cache(maxsize=1)
def native_bfloat16() -> bool:
    """Whether this machine's CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16, oneDNN's fast path):
    there a bfloat16 backbone is 4-5x faster per step than float32; without them TensorFlow emulates it, 4-5x
    slower (feature-vis on VGG16: 4.2 s a step against 0.8 s). Read from ``/proc/cpuinfo`` (Linux), without
    TensorFlow; False where it cannot be read."""
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return re.search(r"\b(?:avx512_bf16|amx_bf16)\b", flags) is not None


def quiet_tensorflow() -> None:
    """Import TensorFlow with its log noise kept off the terminal.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it), absl's verbosity and the ``tensorflow``
    Python logger to ERROR. TensorFlow 2.21 still writes a few lines (oneDNN, CUDA stubs) to file descriptor
    2 before its logging is initialised, which would print over a progress bar or the TUI, so the first
    import runs with descriptor 2 pointed at a temporary file; if the import fails, what it wrote is replayed.
    ``GRADFX_DEBUG=1`` (``gradfx --debug``) leaves everything visible. Safe to call more than once.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "keras" not in sys.modules and not os.environ.get("GRADFX_DEBUG"):
        _import_silently("tensorflow", "keras")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quieten
        pass


def _import_silently(*modules: str) -> None:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded, some test runners): import as is
        for module in modules:
            importlib.import_module(module)
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            for module in modules:
                importlib.import_module(module)
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def parse_device(device: str | None) -> tuple[str, int | None]:
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
    quiet_tensorflow()
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
    kind, index = parse_device(device)
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
