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


def _relu_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    conv = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv2")(conv)
    a = keras.layers.Activation("relu", name="act_a")(keras.layers.Conv2D(2, 1, name="lin_a")(conv))
    b = keras.layers.Activation("relu", name="act_b")(keras.layers.Conv2D(3, 1, name="lin_b")(conv))
    cat = keras.layers.Concatenate(name="cat")([a, b])
    dense = keras.layers.Dense(5, activation="relu", name="dense")(cat)
    model = keras.Model(inputs, [cat, dense])
    for layer in model.layers:
        for w in layer.weights:
            w.assign(np.random.default_rng(len(w.name)).normal(size=w.shape).astype(np.float32))
    return model


def test_pre_relu_layers_are_the_values_before_each_relu():
    import keras

    from gradfx.engine.objectives import pre_relu_layer

    model = _relu_model()
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32))
    names = ["conv", "conv2", "lin_a", "lin_b", "cat", "dense"]
    taps = keras.Model(model.inputs, {n: model.get_layer(n).output for n in names})(x)
    conv2 = pre_relu_layer(model, "conv2_pre_relu")
    pre_conv2 = conv2.fn([taps["conv"]]).numpy()
    assert conv2.inputs == ("conv",) and conv2.post == "conv2" and pre_conv2.shape == (2, 3, 3, 4)
    assert pre_conv2.min() < 0
    np.testing.assert_allclose(np.maximum(pre_conv2, 0), taps["conv2"], rtol=1e-5, atol=1e-4)
    cat = pre_relu_layer(model, "cat_pre_relu")
    dense = pre_relu_layer(model, "dense_pre_relu")
    assert cat.inputs == ("lin_a", "lin_b") and cat.post == "cat" and cat.channels == 5
    pre_cat = cat.fn([taps["lin_a"], taps["lin_b"]]).numpy()
    np.testing.assert_allclose(pre_cat, np.concatenate([taps["lin_a"], taps["lin_b"]], -1))
    np.testing.assert_allclose(tf.nn.relu(pre_cat), taps["cat"], atol=1e-6)
    pre_dense = dense.fn([taps["cat"]]).numpy()
    assert dense.inputs == ("cat",) and pre_dense.min() < 0  # negative values survive: no ReLU applied
    np.testing.assert_allclose(np.maximum(pre_dense, 0), taps["dense"], rtol=1e-5, atol=1e-5)


def test_pre_relu_of_a_layer_without_relu_or_on_the_input_is_a_parameter_error():
    from gradfx.engine.errors import ParameterError
    from gradfx.engine.objectives import pre_relu_layer

    model = _relu_model()
    with pytest.raises(ParameterError, match="has no ReLU"):
        pre_relu_layer(model, "lin_a_pre_relu")
    with pytest.raises(ParameterError, match="reads the network's input"):
        pre_relu_layer(model, "conv_pre_relu")
    with pytest.raises(ParameterError, match="unknown layer 'nope'"):
        pre_relu_layer(model, "nope_pre_relu")


def test_virtual_layers_read_their_inputs_and_derive_the_post_relu_layer():
    from gradfx.engine.objectives import VirtualLayer, with_virtual_layers

    double = VirtualLayer("a_pre_relu", ("x",), lambda xs: 2.0 * xs[0] - 1.0, 4, post="a")
    obj = with_virtual_layers(channel("a_pre_relu", 0) - layer_mean("a"), [double])
    assert obj.layers == {"x"} and str(obj) == "channel(a_pre_relu, 0) - layer_mean(a)"
    x = FEATS["a"]
    pre = 2.0 * x.numpy() - 1.0
    assert float(obj({"x": x}, CTX)) == pytest.approx(pre[..., 0].mean() - np.maximum(pre, 0).mean(), rel=1e-6)
    seen = {}
    leaf = Objective(lambda f, c: tf.constant(0.0), "leaf", {"a_pre_relu"},
                     bind=lambda ctx: seen.update(ctx.features(None)))
    with_virtual_layers(leaf, [double]).bind(BindContext(size=(3, 3), features=lambda im: {"x": x}))
    np.testing.assert_allclose(seen["a_pre_relu"], pre)
    assert with_virtual_layers(channel("a", 0), [double]).layers == {"a"}  # unused: unchanged
