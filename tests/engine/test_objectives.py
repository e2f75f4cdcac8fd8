import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.objectives import (
    BindContext,
    Objective,
    StepContext,
    channel,
    gram_matrix,
    layer_l2,
    layer_mean,
    neuron,
    total_variation,
)

FEATS = {"a": tf.reshape(tf.range(2 * 3 * 3 * 4, dtype=tf.float32), (2, 3, 3, 4)) / 10.0}
CTX = StepContext(image=tf.zeros((1, 4, 4, 3)))


def value(obj):
    return float(obj(FEATS, CTX))


def test_atoms_compute_what_they_say():
    a = FEATS["a"].numpy()
    assert value(channel("a", 2)) == pytest.approx(a[..., 2].mean())
    assert value(channel("a", 1, batch=1)) == pytest.approx(a[1, ..., 1].mean())
    assert value(neuron("a", 3)) == pytest.approx(a[:, 1, 1, 3].mean())
    assert value(layer_mean("a")) == pytest.approx(a.mean())
    assert value(layer_l2("a")) == pytest.approx((a**2).mean(), rel=1e-6)


def test_algebra_values_and_descriptions():
    a, b = channel("a", 0), channel("a", 1)
    va, vb = value(a), value(b)
    cases = [
        (a + b, va + vb, "channel(a, 0) + channel(a, 1)"),
        (a - b, va - vb, "channel(a, 0) - channel(a, 1)"),
        (-a, -va, "-channel(a, 0)"),
        (2 * a, 2 * va, "2 * channel(a, 0)"),
        (a * 0.5, 0.5 * va, "0.5 * channel(a, 0)"),
        (a * b, va * vb, "channel(a, 0) * channel(a, 1)"),
        (a - 0.5 * b, va - 0.5 * vb, "channel(a, 0) - 0.5 * channel(a, 1)"),
        (a - (b + a), va - (vb + va), "channel(a, 0) - (channel(a, 1) + channel(a, 0))"),
        (2 * (a + b), 2 * (va + vb), "2 * (channel(a, 0) + channel(a, 1))"),
        (a / 4, va / 4, "0.25 * channel(a, 0)"),
        (sum([a, b]), va + vb, "channel(a, 0) + channel(a, 1)"),
    ]
    for obj, expected, desc in cases:
        assert value(obj) == pytest.approx(expected, rel=1e-6)
        assert str(obj) == desc


def test_layers_union_and_bind_reaches_every_child():
    seen = []
    leaf = Objective(lambda f, c: tf.constant(1.0), "leaf", {"x"}, bind=lambda ctx: seen.append(ctx.size))
    obj = channel("a", 0) - 3 * leaf
    assert obj.layers == {"a", "x"}
    obj.bind(BindContext(size=(8, 9), features=lambda im: {}))
    assert seen == [(8, 9)]


def test_total_variation_is_zero_on_flat_and_positive_on_edges():
    flat = StepContext(image=tf.fill((1, 8, 8, 3), 0.3))
    edge = StepContext(image=tf.concat([tf.zeros((1, 8, 4, 3)), tf.ones((1, 8, 4, 3))], axis=2))
    assert float(total_variation()({}, flat)) == 0.0
    assert float(total_variation()({}, edge)) > 0.0


def test_gram_matrix_matches_numpy_reference():
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype(np.float32)
    ref = np.stack([f.reshape(-1, 4).T @ f.reshape(-1, 4) / 35.0 for f in x])
    np.testing.assert_allclose(gram_matrix(x).numpy(), ref, rtol=1e-5, atol=1e-5)
