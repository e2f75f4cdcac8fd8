"""The anchors gradfx is measured against, written from their published algorithms (not a test).

- :class:`TutorialStyleTransfer`: the TensorFlow "Neural style transfer" tutorial. VGG19 (or VGG16: the
  same layer names) cut at content ``block5_conv2`` and style ``block1..5_conv1``; ``preprocess_input(image *
  255)``; Gram matrices divided by
  the number of locations; mean-squared style and content losses weighted by ``weight / number of layers``;
  ``tv_weight * tf.image.total_variation``; ``Adam(0.02, beta_1=0.99, epsilon=0.1)``; one ``tf.function``
  step that applies the gradient and clips the image to [0, 1]; the image starts as the content image.
- :class:`KerasDeepDream`: the Keras "Deep Dream" example. InceptionV3 ``mixed4..7`` weighted 1.0 / 1.5 /
  2.0 / 2.5 (on VGG16: the layers and weights gradfx's deepdream uses there); loss ``sum w * sum(a[:, 2:-2, 2:-2] ** 2) / size(a)``; the gradient divided by its mean absolute
  value; ``img += step * grad`` on the whole image every step, in the network's [-1, 1] input space.
- :func:`keras_filter_visualization`: the Keras "Visualizing what convnets learn" example. One filter at a
  time; loss the filter's mean activation away from a 2-pixel border; ``img += lr * l2_normalize(grad)`` in the
  network's input space from small uniform noise; output contrast-normalised (zero mean, std 0.15, +0.5),
  clipped, cropped by 25 px and saved as 8 bits.

Every baseline takes the Keras model it is given, so it runs on exactly gradfx's network and weights: the
seeded random ones, the trained (HED-fine-tuned) VGG16, or the ImageNet VGG19 and InceptionV3.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

CONTENT_LAYERS = ("block5_conv2",)
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def gram_per_location(features: tf.Tensor) -> tf.Tensor:
    """The tutorial's ``gram_matrix``: ``einsum('bijc,bijd->bcd') / (H * W)``."""
    result = tf.linalg.einsum("bijc,bijd->bcd", features, features)
    shape = tf.shape(features)
    return result / tf.cast(shape[1] * shape[2], tf.float32)


class TutorialStyleTransfer:
    """The TF tutorial's style transfer on ``vgg`` (a full VGG19 or VGG16 Keras model without the top;
    both take the same caffe ``preprocess_input``)."""

    def __init__(self, vgg: keras.Model, content: np.ndarray, style: np.ndarray, *, style_weight: float,
                 content_weight: float, tv_weight: float) -> None:
        names = STYLE_LAYERS + CONTENT_LAYERS
        self.extractor = keras.Model(vgg.input, [vgg.get_layer(n).output for n in names])
        self.extractor.trainable = False
        self.weights = (style_weight, content_weight, tv_weight)
        self.style_targets = self._split(tf.constant(style[None], tf.float32))[0]
        self.content_targets = self._split(tf.constant(content[None], tf.float32))[1]
        self.image = tf.Variable(content[None].astype(np.float32))
        self.optimizer = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        self.train_step = tf.function(self._train_step)
        self.evaluate = tf.function(self.loss)

    def _split(self, image01: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        x = keras.applications.vgg19.preprocess_input(image01 * 255.0)
        outputs = self.extractor(x)
        style = [gram_per_location(o) for o in outputs[: len(STYLE_LAYERS)]]
        return style, list(outputs[len(STYLE_LAYERS):])

    def distances(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(style, content, total variation) terms before weighting; the tutorial's loss weights them."""
        style, content = self._split(image)
        s = tf.add_n([tf.reduce_mean((g - t) ** 2) for g, t in zip(style, self.style_targets, strict=True)])
        c = tf.add_n([tf.reduce_mean((f - t) ** 2) for f, t in zip(content, self.content_targets, strict=True)])
        return s, c, tf.reduce_sum(tf.image.total_variation(image))

    def loss(self, image: tf.Tensor) -> tf.Tensor:
        s, c, tv = self.distances(image)
        sw, cw, tw = self.weights
        return sw * s / len(STYLE_LAYERS) + cw * c / len(CONTENT_LAYERS) + tw * tv

    def _train_step(self) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.loss(self.image)
        grad = tape.gradient(loss, self.image)
        self.optimizer.apply_gradients([(grad, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
        return loss

    def run(self, steps: int) -> tuple[float, float]:
        """Run ``steps`` steps; returns (seconds including the first trace, loss of the final image)."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.train_step()
        final = float(self.evaluate(self.image))
        return time.perf_counter() - t0, final


DREAM_LAYERS = {"mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5}


class KerasDeepDream:
    """The Keras DeepDream example's whole-image gradient ascent on ``model`` (InceptionV3 without the top,
    its ``layers`` and ``preprocess`` by default)."""

    def __init__(self, model: keras.Model, layers: dict[str, float] | None = None,
                 preprocess=keras.applications.inception_v3.preprocess_input) -> None:
        self.layers = dict(layers or DREAM_LAYERS)
        self.preprocess = preprocess
        outputs = {n: model.get_layer(n).output for n in self.layers}
        self.extractor = keras.Model(inputs=model.inputs, outputs=outputs)
        self.extractor.trainable = False

    def compute_loss(self, image: tf.Tensor) -> tf.Tensor:
        features = self.extractor(image)
        loss = tf.zeros(shape=())
        for name, coeff in self.layers.items():
            activation = features[name]
            scaling = tf.reduce_prod(tf.cast(tf.shape(activation), "float32"))
            loss += coeff * tf.reduce_sum(tf.square(activation[:, 2:-2, 2:-2, :])) / scaling
        return loss

    @tf.function
    def gradient_ascent_step(self, image: tf.Tensor, learning_rate: float) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = self.compute_loss(image)
        grads = tape.gradient(loss, image)
        grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-6)
        return loss, image + learning_rate * grads

    def run(self, image01: np.ndarray, steps: int, learning_rate: float = 0.01) -> list[float]:
        """``steps`` whole-image steps at the image's size; returns the seconds of each step."""
        image = tf.constant(self.preprocess(image01[None] * 255.0))
        seconds = []
        for _ in range(steps):
            t0 = time.perf_counter()
            loss, image = self.gradient_ascent_step(image, learning_rate)
            float(loss)
            seconds.append(time.perf_counter() - t0)
        return seconds


def _contrast_normalise(x: np.ndarray, crop: int = 25) -> np.ndarray:
    """The example's ``deprocess_image``: zero mean, std 0.15, centred on 0.5, clipped, cropped, 8 bits."""
    x = x - x.mean()
    x = x / (x.std() + 1e-5)
    x = np.clip(x * 0.15 + 0.5, 0, 1)
    x = x[crop:-crop, crop:-crop, :]
    return np.clip(x * 255, 0, 255).astype("uint8")


def keras_filter_visualization(model: keras.Model, layer: str, filters: Sequence[int], size: int, *,
                               iterations: int = 30, learning_rate: float = 10.0,
                               space: str = "caffe") -> list[np.ndarray]:
    """The example's loop for each filter in turn; returns the saved 8-bit RGB images.

    The example works in ResNet50V2's [-1, 1] input space from noise in [-0.125, 0.125] with step 10.0:
    ``space="tf"`` (InceptionV3's space too) runs it as written. VGG's ``space="caffe"`` spans 255 units
    instead of 2, so the start noise and the step are scaled by 127.5 to keep their size relative to the input
    range; the image is BGR in that space and is flipped to RGB when saved.
    """
    if space not in ("caffe", "tf"):
        raise ValueError(f"space {space!r}: caffe or tf")
    feature_extractor = keras.Model(inputs=model.inputs, outputs=model.get_layer(layer).output)
    feature_extractor.trainable = False
    scale = 127.5 if space == "caffe" else 1.0
    lr = learning_rate * scale

    def compute_loss(input_image: tf.Tensor, filter_index: tf.Tensor) -> tf.Tensor:
        activation = feature_extractor(input_image)
        filter_activation = tf.gather(activation[:, 2:-2, 2:-2, :], filter_index, axis=-1)
        return tf.reduce_mean(filter_activation)

    @tf.function
    def gradient_ascent_step(img: tf.Tensor, filter_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img, filter_index)
        grads = tape.gradient(loss, img)
        grads = tf.math.l2_normalize(grads)
        return loss, img + lr * grads

    saved = []
    for filter_index in filters:
        img = tf.random.stateless_uniform((1, size, size, 3), seed=[0, int(filter_index)])
        img = (img - 0.5) * 0.25 * scale
        for _ in range(iterations):
            _, img = gradient_ascent_step(img, tf.constant(filter_index))
        rgb = img[0].numpy()[..., ::-1] if space == "caffe" else img[0].numpy()
        saved.append(_contrast_normalise(rgb))
    return saved
