"""Real photographs for tests that need learned features to see something: scikit-image's bundled images
(a test dependency; they ship inside its wheel, so no download). Importing this module does not import TF."""

from __future__ import annotations

import numpy as np

#: skimage.data functions whose images are in the wheel: a portrait, a cat, a cup of coffee
PHOTOS = ("astronaut", "chelsea", "coffee")


def photo(name: str, size: int) -> np.ndarray:
    """``skimage.data.<name>()`` as float32 RGB in [0, 1], resized so its longest side is ``size`` px."""
    from PIL import Image
    from skimage import data

    rgb = getattr(data, name)()
    im = Image.fromarray(rgb)
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
    return np.asarray(im, np.float32) / 255.0


#: the style-transfer tutorial's layers (VGG16 and VGG19 share the names), by which quality tests judge a style
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block5_conv2"


def style_judge(content: np.ndarray, style: np.ndarray, *, model: str = "vgg16", weights: str = "hed"):
    """``judge(image) -> (style, content)``: an image's Gram distance to ``style`` (over :data:`STYLE_LAYERS`,
    each layer's mean squared Gram difference relative to the style's squared Gram) as a fraction of the content
    photograph's own, and its mean squared :data:`CONTENT_LAYER` difference to the photograph as a fraction of
    the style image's (resized to the photograph's size). A trained network judges (the HED-fine-tuned VGG16,
    always installed), not the effect's own; issue 26 asks at most 0.5 and below 1."""
    import tensorflow as tf

    from gradfx.engine.models.extractor import get_extractor
    from gradfx.engine.objectives import gram_matrix

    ext = get_extractor(model, (*STYLE_LAYERS, CONTENT_LAYER), weights)

    def feats(x):
        return ext(tf.constant(np.asarray(x, np.float32)[None]))

    f_style, f_content = feats(style), feats(content)
    grams = {k: gram_matrix(f_style[k]) for k in STYLE_LAYERS}

    def style_distance(f) -> float:
        return float(np.mean([np.mean((gram_matrix(f[k]) - grams[k]) ** 2) / np.mean(grams[k] ** 2)
                              for k in STYLE_LAYERS]))

    def content_distance(f) -> float:
        return float(np.mean((f[CONTENT_LAYER] - f_content[CONTENT_LAYER]) ** 2))

    s0 = style_distance(f_content)
    c0 = content_distance(feats(tf.image.resize(style[None], content.shape[:2])[0]))

    def judge(image: np.ndarray) -> tuple[float, float]:
        f = feats(image)
        return style_distance(f) / s0, content_distance(f) / c0

    return judge
