import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError
from gradfx.engine.optimise import gradients

G = [tf.constant(np.random.default_rng(1).normal(scale=3, size=(4, 5, 3)).astype(np.float32)),
     tf.constant(np.random.default_rng(2).normal(scale=2, size=(6,)).astype(np.float32))]


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_clip_modes_match_tensorflow():
    for got, ref in zip(gradients.clip(G, "value", 1.5), [tf.clip_by_value(g, -1.5, 1.5) for g in G]):
        close(got, ref)
    for got, ref in zip(gradients.clip(G, "norm", 2.0), [tf.clip_by_norm(g, 2.0) for g in G]):
        close(got, ref)
    for got, ref in zip(gradients.clip(G, "global_norm", 2.0), tf.clip_by_global_norm(G, 2.0)[0]):
        close(got, ref)
    for got, ref in zip(gradients.clip(G, None, None), G):
        close(got, ref)


def test_clip_rejects_bad_mode_and_value():
    with pytest.raises(ParameterError, match="unknown"):
        gradients.clip(G, "bogus", 1.0)
    with pytest.raises(ParameterError, match="> 0"):
        gradients.clip(G, "value", 0.0)


def test_normalisation_modes():
    g = G[0]
    assert float(tf.math.reduce_std(gradients.normalize(g, "std"))) == pytest.approx(1.0, rel=1e-4)
    assert float(tf.reduce_mean(tf.abs(gradients.normalize(g, "mean")))) == pytest.approx(1.0, rel=1e-4)
    assert float(tf.norm(gradients.normalize(g, "l2"))) == pytest.approx(1.0, rel=1e-4)
    close(gradients.normalize(g, "none"), g)
    with pytest.raises(ParameterError):
        gradients.normalize(g, "max")


def test_straight_through_quantises_forward_and_passes_gradient():
    x = tf.Variable(np.linspace(0, 1, 11, dtype=np.float32))
    w = tf.constant(np.arange(11, dtype=np.float32))
    with tf.GradientTape() as tape:
        q = gradients.straight_through(x, 4)
        loss = tf.reduce_sum(q * w)
    grad = tape.gradient(loss, x)
    close(q, np.round(np.linspace(0, 1, 11) * 3) / 3)  # only 4 levels in the forward value
    close(grad, w)  # gradient as if the quantiser were the identity
    assert len(np.unique(q.numpy())) == 4


@pytest.mark.parametrize("mode", ["std", "mean", "l2"])
def test_the_band_wise_divisor_is_normalize_s_divisor(mode):
    # the solver's band-by-band update (a canvas too large for a float32 copy) had its own copy of the
    # normalisation with a private epsilon; it now calls gradients.banded_divisor, checked against divisor
    g = tf.constant(np.random.default_rng(3).normal(scale=2, size=(1, 23, 7, 3)).astype(np.float32))
    bands = [(0, 5), (5, 10), (10, 20), (20, 23)]
    got, finite = gradients.banded_divisor(lambda y0, y1, after: g[:, y0:y1], bands, float(np.prod(g.shape)), mode)
    np.testing.assert_allclose(float(got), float(gradients.divisor(g, mode)), rtol=1e-5)
    assert bool(finite)
    bad = tf.tensor_scatter_nd_update(g, [[0, 21, 0, 0]], [np.inf])
    assert not bool(gradients.banded_divisor(lambda y0, y1, after: bad[:, y0:y1], bands, 1.0, mode)[1])
    close(gradients.normalize(g, mode), g / gradients.divisor(g, mode))
