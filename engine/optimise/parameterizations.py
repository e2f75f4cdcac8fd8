"""Image parameterisations: what the optimiser actually changes.

``pixel`` optimises the RGB values directly. Other parameterisations (spectral, decorrelated colour) map
their variables to an image through differentiable ops; only pixel-space ones can be tiled, because tiling
needs the gradient with respect to image crops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ParameterError
from ..models.tf import tf


class Parameterization:
    """Maps optimisation variables to a batch of RGB images in [0, 1]."""

    name = "base"
    pixel_space = False

    def variables(self, image: tf.Tensor | None, shape: tuple[int, int, int], seed: int) -> list[tf.Variable]:
        """Create the variables, starting from ``image`` (B, H, W, 3) when given, else from seeded noise of
        ``shape`` = (B, H, W)."""
        raise NotImplementedError

    def to_image(self, variables: list[tf.Variable]) -> tf.Tensor:
        raise NotImplementedError

    def project(self, variables: list[tf.Variable]) -> None:
        """Bring the variables back into their valid range after an update."""


def noise(shape: tuple[int, int, int], seed: int, spread: float = 0.1) -> tf.Tensor:
    """Seeded uniform noise around mid-grey, (B, H, W, 3)."""
    return 0.5 + tf.random.stateless_uniform((*shape, 3), seed=[seed, 7], minval=-spread, maxval=spread)


class Pixel(Parameterization):
    """The image itself; projected back into [0, 1] after each update."""

    name = "pixel"
    pixel_space = True

    def variables(self, image: tf.Tensor | None, shape: tuple[int, int, int], seed: int) -> list[tf.Variable]:
        start = noise(shape, seed) if image is None else tf.convert_to_tensor(image, tf.float32)
        return [tf.Variable(tf.clip_by_value(start, 0.0, 1.0), trainable=True, name="image")]

    def to_image(self, variables: list[tf.Variable]) -> tf.Tensor:
        return tf.convert_to_tensor(variables[0])

    def project(self, variables: list[tf.Variable]) -> None:
        variables[0].assign(tf.clip_by_value(variables[0], 0.0, 1.0))


#: lucid's colour correlation of ImageNet (the square root of its covariance, ``to_valid_rgb``), columns scaled
#: so the largest has norm 1.
_COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32
)
_COLOR = _COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0))


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Spatial frequency (cycles per pixel) of each coefficient of an (h, w) real 2-D FFT: (h, w // 2 + 1)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy).astype(np.float32)


class Lucid(Parameterization):
    """lucid's ``param.image``: a spectral (``fft``) and/or decorrelated-colour (``decorrelate``) image.

    ``fft``: the variables are the image's 2-D Fourier coefficients, scaled by ``1 / f ** decay_power`` (f in
    cycles per pixel, floored at one cycle per image) and by ``sqrt(h * w)``, so an optimiser step changes low
    frequencies as much as high ones and natural-image (1/f) spectra are the easy ones to reach.
    ``decorrelate``: the three channels are mixed by the square root of ImageNet's colour covariance, so a
    step moves along decorrelated colour axes. Either way a sigmoid maps the result to [0, 1] (no clipping,
    no projection). Variables start as ``sd``-scaled seeded normal noise (a near-uniform grey image); from
    an image, they start at its exact inverse.
    """

    pixel_space = False

    def __init__(self, fft: bool = True, decorrelate: bool = True, sd: float = 0.01,
                 decay_power: float = 1.0) -> None:
        if not (fft or decorrelate):
            raise ParameterError("the lucid parameterisation needs fft and/or decorrelate; else use 'pixel'")
        self.fft, self.decorrelate = bool(fft), bool(decorrelate)
        self.sd, self.decay_power = float(sd), float(decay_power)
        self.name = "+".join(n for n, on in (("fft", self.fft), ("decorrelated", self.decorrelate)) if on)
        self._hw = (0, 0)
        self._scale: tf.Tensor | None = None

    def variables(self, image: tf.Tensor | None, shape: tuple[int, int, int], seed: int) -> list[tf.Variable]:
        if image is not None:
            image = tf.convert_to_tensor(image, tf.float32)
            shape = (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]))
        b, h, w = shape
        self._hw = (h, w)
        if self.fft:
            freqs = rfft2d_freqs(h, w)
            scale = np.sqrt(h * w) / np.maximum(freqs, 1.0 / max(h, w)) ** self.decay_power
            self._scale = tf.constant(scale.astype(np.float32))
        if image is None:
            var_shape = (2, b, 3, h, w // 2 + 1) if self.fft else (b, h, w, 3)
            start = self.sd * tf.random.stateless_normal(var_shape, seed=[seed, 11])
        else:
            start = self._from_image(image)
        return [tf.Variable(start, trainable=True, name=self.name.replace("+", "_"))]

    def _from_image(self, image: tf.Tensor) -> tf.Tensor:
        """The inverse of :meth:`to_image` (exact, after clipping ``image`` into the sigmoid's open range)."""
        x = tf.clip_by_value(image, 1e-3, 1.0 - 1e-3)
        t = tf.math.log(x / (1.0 - x))
        if self.decorrelate:
            t = tf.einsum("bhwc,cd->bhwd", t, tf.constant(np.linalg.inv(_COLOR.T).astype(np.float32)))
        if not self.fft:
            return t
        spectrum = tf.signal.rfft2d(tf.transpose(t * 4.0, [0, 3, 1, 2]), fft_length=list(self._hw))
        spectrum = spectrum / tf.cast(self._scale, tf.complex64)
        return tf.stack([tf.math.real(spectrum), tf.math.imag(spectrum)])

    def to_image(self, variables: list[tf.Variable]) -> tf.Tensor:
        t = tf.convert_to_tensor(variables[0])
        if self.fft:
            spectrum = tf.complex(t[0] * self._scale, t[1] * self._scale)
            t = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=list(self._hw)), [0, 2, 3, 1]) / 4.0
        if self.decorrelate:
            t = tf.einsum("bhwc,dc->bhwd", t, tf.constant(_COLOR))
        return tf.sigmoid(t)

    def project(self, variables: list[tf.Variable]) -> None:
        """Nothing to project: the sigmoid keeps every image in [0, 1]."""
        return None


#: name -> factory; effects and plugins may add parameterisations here.
PARAMETERIZATIONS: dict[str, Callable[..., Parameterization]] = {
    "pixel": Pixel,
    "fft": lambda **kw: Lucid(fft=True, decorrelate=False, **kw),
    "decorrelated": lambda **kw: Lucid(fft=False, decorrelate=True, **kw),
    "fft+decorrelated": lambda **kw: Lucid(fft=True, decorrelate=True, **kw),
}


def make_parameterization(spec: str | Parameterization, **kwargs: object) -> Parameterization:
    """A parameterisation from its name (``pixel``, or one added to ``PARAMETERIZATIONS``) or as given."""
    if isinstance(spec, Parameterization):
        return spec
    try:
        factory = PARAMETERIZATIONS[spec]
    except KeyError:
        raise ParameterError(
            f"parameterisation {spec!r} is unknown; use one of {', '.join(PARAMETERIZATIONS)}"
        ) from None
    return factory(**kwargs)
