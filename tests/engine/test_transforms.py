"""Differentiable random transforms: gradients flow, the same seed repeats, another seed differs."""

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError
from gradfx.engine.transforms import (
    jitter,
    pad,
    parse_transforms,
    random_rotate,
    random_scale,
    resize_to,
    rotate,
    standard_transforms,
)

IMAGES = tf.constant(np.random.default_rng(0).random((2, 40, 48, 3)), tf.float32)
SEED = tf.constant([3, 7], tf.int64)
ALL = [pad(4), pad(3, "reflect"), jitter(6), random_scale([0.8, 1.0, 1.25]), random_rotate([-30, 15, 45]),
       resize_to((32, 36))]


def chain(transforms, x, seed):
    for t in transforms:
        x = t(x, seed)
    return x


@pytest.mark.parametrize("transforms", [[t] for t in ALL] + [standard_transforms()], ids=repr)
def test_transforms_are_differentiable_with_finite_nonzero_gradients(transforms):
    x = tf.Variable(IMAGES)
    weights = tf.constant(np.random.default_rng(1).random((1, 200, 200, 3)), tf.float32)
    with tf.GradientTape() as tape:
        y = chain(transforms, x, SEED)
        h, w = y.shape[1], y.shape[2]
        loss = tf.reduce_sum(y * weights[:, :h, :w])
    grad = tape.gradient(loss, x)
    assert grad is not None
    g = grad.numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).mean() > 1e-3


@pytest.mark.parametrize("transforms", [[t] for t in ALL[2:5]] + [standard_transforms()], ids=repr)
def test_same_seed_same_result_other_seeds_differ(transforms):
    a = chain(transforms, IMAGES, SEED).numpy()
    b = chain(transforms, IMAGES, tf.constant([3, 7], tf.int64)).numpy()
    assert a.tobytes() == b.tobytes()
    others = [chain(transforms, IMAGES, tf.constant([3, s], tf.int64)).numpy() for s in range(8, 14)]
    assert any(o.shape != a.shape or not np.array_equal(o, a) for o in others)


def test_transforms_work_inside_a_tf_function_with_a_seed_tensor():
    transforms = standard_transforms()

    @tf.function
    def f(x, seed):
        return chain(transforms, x, seed)

    eager = chain(transforms, IMAGES, SEED).numpy()
    np.testing.assert_allclose(f(IMAGES, SEED).numpy(), eager, atol=1e-6)


def test_standard_transforms_are_lucids():
    names = [repr(t) for t in standard_transforms()]
    assert names[0] == "pad(12)" and names[1] == "jitter(8)" and names[4] == "jitter(4)"
    scales = standard_transforms()[2].scales
    np.testing.assert_allclose(scales, [1 + (i - 5) / 50 for i in range(11)])
    angles = standard_transforms()[3].angles
    assert sorted(set(angles)) == list(range(-10, 11)) and angles.count(0) == 6
    # one draw of the chain: padded by 24, cropped by 12, scaled by at most 10%
    out = chain(standard_transforms(), IMAGES, SEED)
    assert abs(out.shape[1] - (40 + 12)) <= 0.1 * 64 + 1


def test_geometry_pad_jitter_scale_rotate():
    x = IMAGES[:1]
    padded = pad(2)(x, SEED)
    assert padded.shape == (1, 44, 52, 3) and float(padded[0, 0, 0, 0]) == 0.5
    cropped = jitter(5)(x, SEED)
    assert cropped.shape == (1, 35, 43, 3)
    assert random_scale([0.5])(x, SEED).shape == (1, 20, 24, 3)
    # a marker right of the centre turns to above it after 90 degrees counter-clockwise
    marker = np.zeros((1, 21, 21, 1), np.float32)
    marker[0, 10, 15, 0] = 1.0
    turned = rotate(tf.constant(marker), np.pi / 2).numpy()[0, ..., 0]
    assert np.unravel_index(turned.argmax(), turned.shape) == (5, 10)
    np.testing.assert_allclose(rotate(x, 0.0).numpy(), x.numpy(), atol=1e-6)
    np.testing.assert_allclose(random_rotate([0])(x, SEED).numpy(), x.numpy())


def test_parse_transforms_spec():
    assert parse_transforms("none") == [] and parse_transforms("") == []
    assert [repr(t) for t in parse_transforms("standard")] == [repr(t) for t in standard_transforms()]
    parsed = parse_transforms("pad(16, reflect), jitter(8), scale(0.95, 1.05), rotate(-5, 0, 5)")
    assert [repr(t) for t in parsed] == ["pad(16, reflect)", "jitter(8)", "scale(0.95, 1.05)", "rotate(-5, 0, 5)"]
    for bad, fragment in [("wobble(3)", "not a known transform"), ("jitter(x)", "whole number"),
                          ("pad(3, mirror)", "pad mode"), ("scale()", "finite numbers"),
                          ("rotate(a)", "needs numbers"), ("jitter 4", "NAME or NAME"),
                          ("scale(0, 1)", "> 0")]:
        with pytest.raises(ParameterError, match=fragment):
            parse_transforms(bad)
