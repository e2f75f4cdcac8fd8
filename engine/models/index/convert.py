"""Converting a network's PyTorch tensors into a Keras weights file, and the fingerprint that proves it right.

A :class:`Converter` knows one architecture: how to build it in Keras, how to load the tensors that
:func:`~.torchzip.read_tensors` returned into it, and the fixed input its fingerprint is measured on.
:func:`convert` writes the ``.weights.h5`` file; :func:`verify` loads that file into a freshly built model
and checks its fingerprint: the (mean, std) of a few layers' activations on :func:`fingerprint_input`, a
smooth pattern computed in closed form (no random generator, so it is the same on every NumPy). The pinned
values (in the catalogue) were measured on the original network run by torch, so a file that passes was
converted right; a wrong layer order, a wrong pool or untrained weights miss by percents or more.

TensorFlow is imported only when a converter runs, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ArchiveError, FingerprintError

if TYPE_CHECKING:
    import keras

__all__ = ["RTOL", "Converter", "check", "convert", "fingerprint", "fingerprint_input", "verify"]

#: relative tolerance of a fingerprint check: float32 runs on different machines differ by ~1e-6
RTOL = 1e-3


@dataclass(frozen=True)
class Converter:
    """One architecture's conversion: ``build()`` makes the Keras model, ``load(model, tensors)`` sets its
    weights from the checkpoint's tensors (raising ``KeyError`` or ``ValueError`` when they do not fit, before
    any weight is set), ``probe()`` is the fingerprint's input, already preprocessed for the network."""

    build: Callable[[], keras.Model]
    load: Callable[[keras.Model, Mapping[str, np.ndarray]], None]
    probe: Callable[[], np.ndarray]


def fingerprint_input(size: int, channels: int = 3) -> np.ndarray:
    """A fixed smooth pattern in [0, 255], shape (1, size, size, channels), float32, from closed-form sines."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    planes = [np.sin(rows * 0.11 + cols * 0.05 * (c + 1)) * np.cos(cols * 0.13 - rows * 0.03 * c)
              for c in range(channels)]
    return (127.5 + 127.5 * np.stack(planes, axis=-1))[None].astype(np.float32)


def fingerprint(model: keras.Model, layers: Sequence[str], inputs: np.ndarray) -> dict[str, tuple[float, float]]:
    """(mean, std) of each named layer's output when ``model`` reads ``inputs`` (already preprocessed)."""
    import keras

    probe = keras.Model(model.input, [model.get_layer(name).output for name in layers])
    outputs = probe(inputs, training=False)
    if len(layers) == 1:
        outputs = [outputs]
    with np.errstate(invalid="ignore", over="ignore"):  # wrong weights may overflow: nan, which never matches
        return {name: (float(np.mean(out, dtype=np.float64)), float(np.std(out, dtype=np.float64)))
                for name, out in zip(layers, outputs, strict=True)}


def convert(converter: Converter, tensors: Mapping[str, np.ndarray], target: Path, what: str) -> None:
    """Build the network, load ``tensors`` into it and save its weights to ``target`` (a ``.weights.h5``)."""
    model = converter.build()
    try:
        converter.load(model, tensors)
    except (KeyError, ValueError) as exc:
        raise ArchiveError(f"{what} does not fit its network: {exc}") from None
    model.save_weights(str(target))


def verify(converter: Converter, path: Path, expected: Mapping[str, tuple[float, float]], what: str,
           rtol: float = RTOL) -> dict[str, tuple[float, float]]:
    """Load the weights file ``path`` into a fresh model and :func:`check` it; returns what was measured."""
    model = converter.build()
    model.load_weights(str(path))
    return check(model, converter, expected, what, rtol)


def check(model: keras.Model, converter: Converter, expected: Mapping[str, tuple[float, float]], what: str,
          rtol: float = RTOL) -> dict[str, tuple[float, float]]:
    """Compare ``model``'s fingerprint with the pinned (mean, std) of each layer; returns what was measured.

    Raises :class:`FingerprintError` naming the first layer that differs.
    """
    measured = fingerprint(model, tuple(expected), converter.probe())
    for name, want in expected.items():
        if not np.allclose(measured[name], want, rtol=rtol, atol=0.0):
            got = tuple(round(v, 6) for v in measured[name])
            raise FingerprintError(f"{what}: layer {name} gives (mean, std) {got}, not the pinned {tuple(want)}: "
                                   "the converted network is wrong; nothing was cached (report this as a bug)")
    return measured
