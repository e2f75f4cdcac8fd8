"""The public style loss (gradfx.engine.objectives.style_loss): its value against a NumPy reference, blended
styles, tiles, regions and its mistakes; its targets accumulated over tiles match the whole image's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine import ParameterError
from gradfx.engine.objectives import BindContext, StepContext, gram_matrix, gram_targets, style_loss

RNG = np.random.default_rng(0)


def identity(images):
    """A "network" whose layer "a" is the image itself and "b" its square: Grams any reader can check."""
    x = tf.convert_to_tensor(images, tf.float32)
    return {"a": x, "b": x * x}


def np_gram(x):
    flat = x.reshape(-1, x.shape[-1])
    return flat.T @ flat / flat.shape[0]


def bound(loss, size=(8, 8), tile=0):
    loss.bind(BindContext(size=size, features=identity, tile=tile, min_size=1))
    return loss


def value(loss, image, aligned=None):
    return float(loss(identity(image[None]), StepContext(image=tf.constant(image[None]), aligned=aligned or {})))


def test_the_value_is_the_weighted_mean_squared_gram_difference():
    style, x = RNG.random((8, 8, 3), np.float32), RNG.random((8, 8, 3), np.float32)
    loss = bound(style_loss(style, "a:3,b:1"))
    expected = (3 * np.mean((np_gram(x) - np_gram(style)) ** 2)
                + np.mean((np_gram(x * x) - np_gram(style * style)) ** 2)) / 4
    assert value(loss, x) == pytest.approx(expected, rel=1e-4)
    assert value(loss, style) == pytest.approx(0.0, abs=1e-9)  # the style itself matches
    assert loss.layers == {"a", "b"} and str(loss) == "style_loss(1 image(s); a,b)"


def test_blended_styles_target_the_blend_of_their_grams():
    s1, s2, x = (RNG.random((8, 8, 3), np.float32) for _ in range(3))
    loss = bound(style_loss([s1, s2], ["a"], blend=(3, 1)))
    target = 0.75 * np_gram(s1) + 0.25 * np_gram(s2)
    assert value(loss, x) == pytest.approx(np.mean((np_gram(x) - target) ** 2), rel=1e-4)


def test_a_style_image_of_another_size_is_resized_to_the_canvas_by_scale():
    style = np.kron(RNG.random((4, 4, 3), np.float32), np.ones((4, 4, 1), np.float32))  # 16 x 16 blocks
    loss = bound(style_loss(style, ["a"], scale=0.5), size=(16, 16))  # longest side 8
    small = tf.image.resize(style[None], (8, 8), method="bilinear", antialias=True)[0].numpy()
    target = loss.targets[0]["a"].numpy()[0]
    np.testing.assert_allclose(target, np_gram(small), rtol=0.05, atol=1e-3)


def test_a_tile_weighs_its_loss_by_its_share_of_the_canvas():
    style, x = RNG.random((16, 16, 3), np.float32), RNG.random((8, 16, 3), np.float32)
    whole = bound(style_loss(style, ["a"]), size=(8, 16))
    tiled = bound(style_loss(style, ["a"]), size=(16, 16))  # the same 8 x 16 image is half this canvas
    assert value(tiled, x) == pytest.approx(0.5 * value(whole, x), rel=1e-4)


def test_within_a_region_compares_the_regions_own_gram():
    style, x = RNG.random((8, 8, 3), np.float32), RNG.random((8, 8, 3), np.float32)
    loss = bound(style_loss(style, ["a"]))
    left = np.zeros((1, 8, 8, 1), np.float32)
    left[..., :4, :] = 1.0
    region = loss.within("left")
    got = value(region, x, {"left": tf.constant(left)})
    expected = 0.5 * np.mean((np_gram(x[:, :4]) - np_gram(style)) ** 2)  # its Gram, weighted by its share
    assert got == pytest.approx(expected, rel=1e-3)
    assert value(region, x, {"left": tf.zeros((1, 8, 8, 1))}) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("args", "kwargs", "fragment"), [
    (([], "a"), {}, "one or more style images"),
    ((np.zeros((8, 8)), "a"), {}, "height x width x 3"),
    ((np.zeros((8, 8, 3)), "a,,b"), {}, "empty item"),
    ((np.zeros((8, 8, 3)), "a"), {"blend": (1, 2)}, "one weight >= 0 per style image"),
    ((np.zeros((8, 8, 3)), "a"), {"masks": ("m0", "m1")}, "one aligned image per style image"),
    ((np.zeros((8, 8, 3)), "a"), {"scale": 0}, "scale must be > 0"),
])
def test_mistakes_are_parameter_errors_at_once(args, kwargs, fragment):
    with pytest.raises(ParameterError, match=fragment):
        style_loss(*args, **kwargs)


def test_grams_accumulated_over_tiles_match_the_whole_image():
    from gradfx.engine.models.extractor import get_extractor

    layers = ("block1_conv1", "block2_conv1")
    ext = get_extractor("vgg16", layers, "random", seed=0)
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    image = np.stack([0.5 + 0.4 * np.sin(x / 3), 0.5 + 0.4 * np.cos(y / 5), (x + y) / 256], -1)
    whole = ext(image[None])
    tiled = gram_targets(BindContext(size=(128, 128), features=ext, tile=64, min_size=32), image, layers)
    for k in layers:
        ref = gram_matrix(whole[k]).numpy()
        rel = np.abs(tiled[k].numpy() - ref).mean() / np.abs(ref).mean()
        assert rel < 0.1  # only the zero padding at the tile borders differs
