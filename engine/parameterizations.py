"""Image parameterisations: what the optimiser actually changes.

``pixel`` optimises the RGB values directly. Other parameterisations (spectral, decorrelated colour) map
their variables to an image through differentiable ops; only pixel-space ones can be tiled, because tiling
needs the gradient with respect to image crops.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from .errors import ParameterError


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


#: name -> factory; effects and plugins may add parameterisations here.
PARAMETERIZATIONS: dict[str, Callable[..., Parameterization]] = {"pixel": Pixel}


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
