"""The generic objectives: activations (a channel, a neuron, a layer, a direction, a class's logit), the batch's
diversity, and the image regularisers (total variation, L1, blur). Each is an :class:`~.base.Objective` named
after its call (``channel(block4_conv1, 12)``)."""

from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from ..models.tf import tf
from .base import Features, Objective, StepContext, _batch, objective


@objective
def channel(layer: str, n: int, batch: int | None = None) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` (over positions, and over the batch unless ``batch``)."""
    return Objective(lambda f, c: tf.reduce_mean(_batch(f[layer], batch)[..., n]), "", {layer})


@objective
def neuron(layer: str, n: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """Activation of channel ``n`` at one position of ``layer`` (the centre unless ``x``/``y`` are given)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        shape = tf.shape(t)
        yy = shape[1] // 2 if y is None else y
        xx = shape[2] // 2 if x is None else x
        return tf.reduce_mean(t[:, yy, xx, n])

    return Objective(fn, "", {layer})


@objective
def layer_mean(layer: str, batch: int | None = None, border: int = 0) -> Objective:
    """Mean activation of a whole layer, optionally ignoring ``border`` positions on each side (the Keras
    DeepDream example's loss, which avoids border artefacts)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        if border:
            t = t[:, border:-border, border:-border, :]
        return tf.reduce_mean(t)

    return Objective(fn, "", {layer})


@objective
def layer_l2(layer: str, batch: int | None = None) -> Objective:
    """Mean squared activation of a whole layer (lucid's ``deepdream`` objective)."""
    return Objective(lambda f, c: tf.reduce_mean(tf.square(_batch(f[layer], batch))), "", {layer})


@objective
def total_variation(batch: int | None = None) -> Objective:
    """Mean absolute difference between neighbouring pixels of the image (lower is smoother)."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        x = _batch(c.image, batch)
        return tf.reduce_mean(tf.abs(x[:, 1:, :, :] - x[:, :-1, :, :])) + tf.reduce_mean(
            tf.abs(x[:, :, 1:, :] - x[:, :, :-1, :])
        )

    return Objective(fn, "")


@objective
def l1(constant: float = 0.5, batch: int | None = None) -> Objective:
    """Mean absolute deviation of the pixels from ``constant`` (lucid's L1 regulariser)."""
    return Objective(lambda f, c: tf.reduce_mean(tf.abs(_batch(c.image, batch) - constant)), "")


@objective
def blur(batch: int | None = None) -> Objective:
    """Squared distance of the image from its 3x3 box-blurred self (lower is smoother); the blur is a target,
    not differentiated through, as in lucid's ``blur_input_each_step``."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        x = _batch(c.image, batch)
        kernel = tf.ones((3, 3, 1, 1), x.dtype) / 9.0
        kernel = tf.tile(kernel, [1, 1, x.shape[-1] or 3, 1])
        blurred = tf.nn.depthwise_conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"), kernel,
                                         [1, 1, 1, 1], "VALID")
        return tf.reduce_mean(tf.square(x - tf.stop_gradient(blurred)))

    return Objective(fn, "")


@objective
def direction(layer: str, vector: Any, cossim_pow: float = 0.0, batch: int | None = None) -> Objective:
    """Activations of ``layer`` along ``vector`` (one weight per channel): lucid's ``direction``, the mean dot
    product over positions, times the cosine similarity to the power ``cossim_pow`` when it is > 0."""
    vec = tf.constant(vector, tf.float32)
    if vec.shape.rank != 1 or not vec.shape[0]:
        raise ParameterError(f"direction({layer}, ...): the vector must be 1-D and non-empty, got shape {vec.shape}")

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = _batch(f[layer], batch)
        if t.shape[-1] is not None and t.shape[-1] != vec.shape[0]:
            raise ParameterError(f"direction({layer}, ...): the vector has {vec.shape[0]} values but layer "
                                 f"{layer} has {t.shape[-1]} channels")
        t = tf.cast(t, tf.float32)
        dot = tf.reduce_sum(t * vec, -1)
        if not cossim_pow:
            return tf.reduce_mean(dot) / vec.shape[0]  # = mean over positions and channels of t * vec
        cossim = dot / (1e-4 + tf.norm(t, axis=-1) * tf.norm(vec))
        return tf.reduce_mean(dot * tf.maximum(cossim, 0.1) ** cossim_pow)

    return Objective(fn, "", {layer})


@objective
def diversity(layer: str) -> Objective:
    """How different the batch's images are at ``layer``: minus the mean cosine similarity between the Gram
    matrices of every pair of images (lucid's ``diversity``, with the sign flipped so higher is more diverse:
    maximise ``channel(...) + k * diversity(...)``). Zero for a batch of one."""

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = tf.cast(f[layer], tf.float32)
        b = tf.shape(t)[0]
        flat = tf.reshape(t, tf.stack([b, -1, tf.shape(t)[-1]]))
        grams = tf.reshape(tf.matmul(flat, flat, transpose_a=True), tf.stack([b, -1]))
        grams = tf.math.l2_normalize(grams, axis=1, epsilon=1e-10)
        sims = tf.matmul(grams, grams, transpose_b=True)  # (B, B) cosine similarities
        bf = tf.cast(b, tf.float32)
        pairs = tf.maximum(bf * (bf - 1.0), 1.0)
        return -(tf.reduce_sum(sims) - tf.linalg.trace(sims)) / pairs

    return Objective(fn, "", {layer})


def logit(n: int, layer: str, kernel: Any, bias: Any, batch: int | None = None) -> Objective:
    """Class ``n``'s pre-softmax score: ``layer`` (the classifier's penultimate activations) times column ``n``
    of the final dense layer's ``kernel``, plus ``bias[n]``. Maximising the logit rather than the softmax
    probability keeps the objective from winning by suppressing the other classes."""
    w = tf.constant(kernel[:, n], tf.float32)
    b = float(bias[n]) if bias is not None else 0.0

    def fn(f: Features, c: StepContext) -> tf.Tensor:
        t = tf.cast(_batch(f[layer], batch), tf.float32)
        t = tf.reshape(t, tf.stack([tf.shape(t)[0], -1]))
        return tf.reduce_mean(tf.linalg.matvec(t, w)) + b

    return Objective(fn, f"logit({n})", {layer})
