"""The model zoo: preprocessing, weights resolution (imagenet / file / random / auto) and extractors.

No network here: GRADFX_OFFLINE=1 and an empty temporary KERAS_HOME for every test; the ``imagenet`` path
is exercised with weights files the tests write themselves. Images are 32-96 px.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError, UnknownModelError, WeightsError
from gradfx.engine.models.extractor import clear_cache, get_extractor, load_model
from gradfx.engine.models.weights import keras_models_dir, resolve_weights
from gradfx.engine.modelspecs import (
    BUILTIN_MODELS,
    INCEPTION_V3,
    VGG16,
    VGG19,
    ModelSpec,
    check_size,
    tf_deprocess,
    tf_preprocess,
)
from gradfx.engine.registry import get_spec


@pytest.fixture(autouse=True)
def offline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty KERAS_HOME per test, and never a download attempt."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    return home


@pytest.fixture(scope="module", autouse=True)
def _free_models_after_module():
    yield
    clear_cache()


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.weights]


def _same_weights(a: keras.Model, b: keras.Model) -> bool:
    wa, wb = _weights(a), _weights(b)
    return len(wa) == len(wb) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(wa, wb, strict=True)
    )


def write_legacy_h5(model: keras.Model, path: Path) -> None:
    """Write ``model``'s weights the way the Keras application files are laid out (Keras 2 legacy h5).

    Root attribute ``layer_names`` lists every layer; one group per layer with a ``weight_names`` attribute
    and a dataset per weight, in the legacy order (trainable then non-trainable, which for conv/dense/BN
    layers is the layer's weight order). Keras 3 reads this back topologically: by order, not by name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in model.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names], dtype="S")
            for name, w in zip(names, layer.weights, strict=True):
                group.create_dataset(name, data=np.asarray(w))


# ------------------------------------------------------------------------------------ preprocessing


@pytest.mark.parametrize("spec", BUILTIN_MODELS, ids=lambda s: s.name)
def test_deprocess_inverts_preprocess(spec: ModelSpec) -> None:
    x = np.random.default_rng(0).uniform(0, 1, (2, 5, 7, 3))
    y = spec.preprocess(tf.constant(x, tf.float64))
    assert y.dtype == tf.float64
    np.testing.assert_allclose(spec.deprocess(y).numpy(), x, rtol=0, atol=1e-12)
    # float32 too, to float32 precision
    y32 = spec.preprocess(tf.constant(x, tf.float32))
    np.testing.assert_allclose(spec.deprocess(y32).numpy(), x, atol=1e-5)


@pytest.mark.parametrize("spec", BUILTIN_MODELS, ids=lambda s: s.name)
def test_preprocess_maps_unit_range_into_input_range(spec: ModelSpec) -> None:
    corners = tf.constant([[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]]], tf.float64)
    y = spec.preprocess(corners).numpy()
    lo, hi = spec.input_range
    assert lo - 1e-9 <= y.min() and y.max() <= hi + 1e-9
    assert np.isclose(y.min(), lo) and np.isclose(y.max(), hi)


def test_vgg_preprocess_is_caffe_bgr_mean_shift() -> None:
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 3, 3)).astype(np.float32)
    ours = VGG19.preprocess(tf.constant(x)).numpy()
    theirs = keras.applications.vgg19.preprocess_input(x.copy() * 255.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    incep = keras.applications.inception_v3.preprocess_input(x.copy() * 255.0)
    np.testing.assert_allclose(INCEPTION_V3.preprocess(tf.constant(x)).numpy(), incep, atol=1e-6)


@pytest.mark.parametrize("spec", BUILTIN_MODELS, ids=lambda s: s.name)
def test_gradient_through_preprocess_matches_finite_differences(spec: ModelSpec) -> None:
    rng = np.random.default_rng(2)
    x0 = rng.uniform(0, 1, (1, 3, 4, 3))
    w = tf.constant(rng.normal(size=(1, 3, 4, 3)))

    def f(x: tf.Tensor) -> tf.Tensor:  # a non-linear scalar of the network input, channel-order sensitive
        y = spec.preprocess(x)
        return tf.reduce_sum(w * tf.sin(y / 37.0) + (y / 100.0) ** 2 * tf.range(3, dtype=tf.float64))

    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        value = f(x)
    grad = tape.gradient(value, x).numpy()

    eps = 1e-6
    numeric = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (f(tf.constant(up)).numpy() - f(tf.constant(down)).numpy()) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_gradient_flows_from_features_to_pixels() -> None:
    ext = get_extractor("vgg16", ["block3_conv1"], "random", seed=0)
    x0 = tf.random.stateless_uniform((1, 32, 32, 3), seed=(1, 2))
    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(ext(x)["block3_conv1"] ** 2)
    grad = tape.gradient(loss, x)
    assert grad is not None and grad.shape == x.shape
    assert np.all(np.isfinite(grad.numpy())) and float(tf.reduce_max(tf.abs(grad))) > 0
    # a small step along the gradient increases the objective (directional derivative check)
    d = grad / tf.norm(grad)
    h = 1e-2

    def loss_at(img: tf.Tensor) -> float:
        return float(tf.reduce_mean(ext(img)["block3_conv1"] ** 2))

    slope = (loss_at(x0 + h * d) - loss_at(x0 - h * d)) / (2 * h)
    expected = float(tf.reduce_sum(grad * d))
    assert slope > 0
    assert abs(slope - expected) <= 0.05 * abs(expected)


# ------------------------------------------------------------------------------------ random weights


def test_random_weights_are_seeded() -> None:
    a = load_model("vgg16", "random", seed=7).model
    clear_cache()
    b = load_model("vgg16", "random", seed=7).model
    assert a is not b and _same_weights(a, b)
    c = load_model("vgg16", "random", seed=8).model
    assert not np.array_equal(_weights(a)[0], _weights(c)[0])


def test_random_weights_are_he_normal_with_zero_bias() -> None:
    model = load_model("vgg16", "random", seed=0).model
    for name in ("block1_conv1", "block4_conv2"):
        kernel, bias = (np.asarray(w) for w in model.get_layer(name).weights)
        kh, kw, cin, _ = kernel.shape
        expected = np.sqrt(2.0 / (kh * kw * cin))
        assert abs(kernel.std() / expected - 1) < 0.05
        assert abs(kernel.mean()) < 0.05 * expected
        assert not bias.any()


def test_he_init_keeps_deep_activations_alive() -> None:
    layers = ["block1_conv2", "block5_conv3"]
    x = tf.random.stateless_uniform((2, 64, 64, 3), seed=(3, 4))
    ours = get_extractor("vgg16", layers, "random", seed=0)(x)
    ms = {k: float(tf.reduce_mean(v**2)) for k, v in ours.items()}
    ratio = ms["block5_conv3"] / ms["block1_conv2"]
    assert 0.1 < ratio < 100, ms
    # Keras' default (Glorot) init, same graph: deep activations collapse by orders of magnitude.
    glorot = VGG16.build()
    cut = keras.Model(glorot.inputs, [glorot.get_layer(n).output for n in layers])
    g1, g5 = (float(tf.reduce_mean(v**2)) for v in cut(VGG16.preprocess(x)))
    assert g5 / g1 < ratio / 100


def test_inception_random_batchnorm_is_identity_like() -> None:
    model = load_model("inception_v3", "random", seed=0).model
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    values = {w.name: np.asarray(w) for w in bn.weights}
    assert not values["beta"].any() and not values["moving_mean"].any()
    assert np.all(values["moving_variance"] == 1)
    conv = model.get_layer("conv2d_5")
    assert abs(np.asarray(conv.kernel).std() / np.sqrt(2.0 / np.prod(conv.kernel.shape[:-1])) - 1) < 0.1


# ------------------------------------------------------------------------------------- weights files


@pytest.fixture(scope="module")
def vgg16_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """VGG16 no-top weights (random, seed 3) written as a legacy .h5 and as a .weights.h5."""
    folder = tmp_path_factory.mktemp("vgg16_files")
    model = load_model("vgg16", "random", seed=3).model
    legacy = folder / VGG16.imagenet_file
    write_legacy_h5(model, legacy)
    modern = folder / "vgg16_seed3.weights.h5"
    model.save_weights(modern)
    return {"legacy": legacy, "modern": modern}


def _install(home: Path, file: Path, name: str) -> Path:
    (home / "models").mkdir(exist_ok=True)
    target = home / "models" / name
    target.write_bytes(file.read_bytes())
    return target


def test_imagenet_reads_the_standard_file_from_keras_home(offline_home: Path, vgg16_files) -> None:
    target = _install(offline_home, vgg16_files["legacy"], VGG16.imagenet_file)
    reference = load_model("vgg16", "random", seed=3).model
    loaded = load_model("vgg16", "imagenet")
    assert loaded.weights.mode == "imagenet" and loaded.weights.path == str(target)
    assert not loaded.weights.fell_back and loaded.weights.warning is None
    assert loaded.model is not reference and _same_weights(loaded.model, reference)
    auto = load_model("vgg16")  # auto finds the same file: same cached model
    assert auto.weights.mode == "imagenet" and not auto.weights.fell_back
    assert auto.model is loaded.model
    assert not loaded.model.trainable_weights


def test_auto_with_empty_keras_home_falls_back_to_random_with_warning(offline_home: Path) -> None:
    resolved = resolve_weights(VGG19, "auto")
    assert resolved.mode == "random" and resolved.fell_back and resolved.path is None
    warning = resolved.warning or ""
    assert "random" in warning and "no learned features" in warning
    assert VGG19.imagenet_file in warning and str(offline_home / "models") in warning
    top = resolve_weights(VGG19, "auto", include_top=True)
    assert VGG19.imagenet_top_file in (top.warning or "")


def test_cached_random_network_reports_each_callers_weights(offline_home: Path, no_trained_vgg16) -> None:
    # ``random`` and an ``auto`` that fell back share one network, but each caller gets its own record: the
    # fallback flag and warning must not be lost to (or leak from) an earlier cache entry
    plain = get_extractor("vgg16", ("block1_conv1",), "random", seed=5)
    auto = get_extractor("vgg16", ("block1_conv1",), "auto", seed=5)
    assert auto.weights.fell_back and auto.weights.warning and not plain.weights.fell_back
    assert _same_weights(auto.model, plain.model)
    assert load_model("vgg16", "auto", seed=5).weights.fell_back
    assert not load_model("vgg16", "random", seed=5).weights.fell_back
    assert load_model("vgg16", "auto", seed=5).model is load_model("vgg16", "random", seed=5).model


def test_imagenet_offline_and_missing_is_a_one_line_weights_error(offline_home: Path) -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights(VGG19, "imagenet")
    message = str(info.value)
    assert VGG19.imagenet_file in message and str(offline_home / "models") in message
    assert "GRADFX_OFFLINE" in message and "--weights random" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["legacy", "modern"])
def test_weights_file_path(vgg16_files, kind: str) -> None:
    reference = load_model("vgg16", "random", seed=3).model
    loaded = load_model(VGG16, str(vgg16_files[kind]))
    assert loaded.weights.mode == "file" and loaded.weights.path == str(vgg16_files[kind])
    assert _same_weights(loaded.model, reference)


def test_weights_path_like_is_accepted(vgg16_files) -> None:
    assert resolve_weights(VGG16, vgg16_files["modern"]).mode == "file"


@pytest.mark.parametrize("kind", ["legacy", "modern"])
def test_weights_of_another_architecture_are_refused(vgg16_files, kind: str) -> None:
    path = vgg16_files[kind]
    with pytest.raises(WeightsError) as info:
        load_model("vgg19", str(path))
    assert path.name in str(info.value) and "vgg19" in str(info.value)


def test_missing_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "weights.h5"
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", str(path))
    assert "weights.h5" in str(info.value) and "not found" in str(info.value)


def test_a_weights_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is a folder; name the .h5"):  # it said "not found"
        load_model("vgg16", str(tmp_path))


def test_keras_model_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.keras"
    path.write_bytes(b"PK\x03\x04 pretend zip")
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", str(path))
    assert "whole_model.keras" in str(info.value) and "never" in str(info.value)


def test_corrupt_weights_file(tmp_path: Path, offline_home: Path) -> None:
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", str(path))
    assert "broken.weights.h5" in str(info.value) and "vgg16" in str(info.value)
    # a corrupt file in KERAS_HOME fails the same way instead of silently going random
    _install(offline_home, path, VGG16.imagenet_file)
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", "auto")
    assert VGG16.imagenet_file in str(info.value)


def test_unknown_weights_mode_lists_the_modes() -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights(VGG16, "imagnet")
    message = str(info.value)
    assert "'imagenet'" in message and all(m in message for m in ("auto", "random"))


def test_keras_home_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("KERAS_HOME", str(other))
    assert keras_models_dir() == os.path.join(str(other), "models")
    monkeypatch.delenv("KERAS_HOME")
    assert keras_models_dir() == os.path.join(os.path.expanduser("~"), ".keras", "models")


def test_keras_application_file_names_and_origins() -> None:
    from gradfx.engine.models import index

    for spec in BUILTIN_MODELS:
        if spec.name == "efficientnet_lite0":  # no Keras application: its weights come from the package index only
            assert spec.imagenet_file is None and spec.imagenet_origin is None
            assert any(n.model == spec.name for n in index.catalogue())
            continue
        assert spec.imagenet_file and spec.imagenet_file.endswith("_notop.h5")
        assert spec.imagenet_origin and spec.imagenet_origin.endswith("/" + spec.imagenet_file)
        assert spec.imagenet_top_origin and spec.imagenet_top_origin.endswith("/" + spec.imagenet_top_file)
    assert VGG19.imagenet_file == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


# ------------------------------------------------------------------------------------------ extractors


def test_extractor_outputs_exactly_the_requested_layers() -> None:
    layers = ["block2_conv1", "block1_conv1", "block3_conv2"]
    ext = get_extractor("vgg16", layers, "random")
    out = ext(tf.random.stateless_uniform((2, 40, 48, 3), seed=(0, 1)))
    assert list(out) == layers and ext.layers == tuple(layers)
    assert out["block1_conv1"].shape == (2, 40, 48, 64)
    assert out["block3_conv2"].shape == (2, 10, 12, 256)


def test_extractor_is_cut_frozen_and_cached() -> None:
    full = load_model("vgg16", "random").model
    ext = get_extractor("vgg16", ["block1_conv2", "block3_conv1"], "random")
    names = {layer.name for layer in ext.model.layers}
    assert len(ext.model.layers) < len(full.layers)
    assert "block3_conv1" in names and not names & {"block3_conv2", "block4_conv1", "block5_pool"}
    assert not ext.model.trainable_weights and not full.trainable_weights
    assert get_extractor("vgg16", ("block3_conv1", "block1_conv2"), "random") is ext
    assert get_extractor("vgg16", ["block1_conv2", "block3_conv1"], "random", seed=1) is not ext
    assert ext.weights.mode == "random" and ext.spec is VGG16


def test_models_are_cached_per_device_and_built_on_it() -> None:
    # a Ray worker per GPU: the second GPU must not compute with weights that live on the first
    here = get_extractor("vgg16", ["block1_conv1"], "random")
    on_cpu = get_extractor("vgg16", ["block1_conv1"], "random", device="/CPU:0")
    assert on_cpu is not here and on_cpu.device == "/CPU:0"
    assert get_extractor("vgg16", ["block1_conv1"], "random", device="/CPU:0") is on_cpu
    assert load_model("vgg16", "random", device="/CPU:0").model is not load_model("vgg16", "random").model
    for variant in (on_cpu, on_cpu.with_precision("bfloat16")):
        assert variant.device == "/CPU:0"
        assert all(v.value.device.endswith("CPU:0") for v in variant.model.weights)


def test_extractor_shares_the_loaded_model_weights() -> None:
    full = load_model("vgg16", "random").model
    ext = get_extractor("vgg16", ["block1_conv1"], "random")
    assert ext.model.get_layer("block1_conv1") is full.get_layer("block1_conv1")


def test_unknown_layer_is_a_parameter_error_with_suggestion() -> None:
    with pytest.raises(ParameterError) as info:
        get_extractor("vgg16", ["block1_conv1", "block5_conv4"], "random")
    message = str(info.value)
    assert "'block5_conv4'" in message and "vgg16" in message and "did you mean" in message
    assert "gradfx models" in message


def test_avg_pooling_vgg_has_average_pools_and_the_same_conv_weights(offline_home: Path, vgg16_files) -> None:
    _install(offline_home, vgg16_files["legacy"], VGG16.imagenet_file)
    pooled = {}
    for pooling in ("max", "avg"):
        pooled[pooling] = load_model("vgg16", "imagenet", pooling=pooling).model
    kinds = {type(layer) for layer in pooled["avg"].layers}
    assert keras.layers.AveragePooling2D in kinds and keras.layers.MaxPooling2D not in kinds
    assert _same_weights(pooled["avg"], pooled["max"])
    ext = get_extractor("vgg16", ["block2_conv1"], "imagenet", pooling="avg")
    x = tf.random.stateless_uniform((1, 32, 32, 3), seed=(5, 6))
    max_ext = get_extractor("vgg16", ["block2_conv1"], "imagenet")
    assert not np.allclose(ext(x)["block2_conv1"], max_ext(x)["block2_conv1"])
    with pytest.raises(ParameterError):
        load_model("inception_v3", "random", pooling="avg")


def test_extractor_checks_image_size_and_shape() -> None:
    ext = get_extractor("vgg16", ["block1_conv1"], "random")
    with pytest.raises(ParameterError) as info:
        ext(tf.zeros((1, 31, 64, 3)))
    assert "32" in str(info.value)
    with pytest.raises(ParameterError):
        ext(tf.zeros((32, 32, 3)))


# --------------------------------------------------------------------------------------- InceptionV3


def test_inception_min_size() -> None:
    check_size(INCEPTION_V3, 75, 80)
    with pytest.raises(ParameterError) as info:
        check_size(INCEPTION_V3, 74, 200)
    assert "75" in str(info.value) and "inception_v3" in str(info.value)
    check_size(VGG19, 32, 32)
    with pytest.raises(ParameterError):
        check_size(VGG19, 224, 200, include_top=True)


def test_inception_layer_names_are_stable_and_extractable() -> None:
    names = INCEPTION_V3.layer_names()
    assert {f"mixed{i}" for i in range(11)} <= set(names)
    assert names.index("mixed3") < names.index("mixed5") and "activation" in names
    assert "conv2d" not in names and "input_layer" not in names
    ext = get_extractor("inception_v3", ["mixed3", "activation_5"], "random")
    # the same names whatever Keras built before (its auto-name counter is process-wide)
    assert ext.model.get_layer("activation_5") is load_model("inception_v3", "random").model.get_layer(
        "activation_5"
    )
    out = ext(tf.random.stateless_uniform((1, 80, 96, 3), seed=(7, 8)))
    assert set(out) == {"mixed3", "activation_5"} and out["mixed3"].shape[-1] == 768
    assert not ext.model.trainable_weights


def test_vgg_layer_names_in_network_order() -> None:
    names = VGG19.layer_names()
    assert names[0] == "block1_conv1" and names[-1] == "block5_pool" and "block5_conv4" in names
    assert set(VGG19.default_layers) <= set(names)
    assert VGG19.layer_names() is names  # cached


# ----------------------------------------------------------------------------------------- lookup


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_spec("vgg91")
    message = str(info.value)
    assert "'vgg91'" in message and "did you mean 'vgg19'" in message and "inception_v3" in message


def test_a_name_is_looked_up_in_the_process_registry(registry) -> None:
    # the module-wide lookup that api.run overwrote on every run (and never restored) is gone: a name means
    # what the process's registry says, so a plugin's model is found while it is registered and not after
    from gradfx.engine import hookimpl

    tiny = ModelSpec(
        name="tiny",
        summary="a two-layer test net",
        build=lambda include_top=False, pooling="max": keras.Sequential(
            [
                keras.Input((None, None, 3)),
                keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
            ]
        ),
        preprocess=tf_preprocess,
        deprocess=tf_deprocess,
        input_range=(-1.0, 1.0),
        min_size=8,
    )

    class Plugin:
        @hookimpl
        def gradfx_register_models(self, register):
            register(tiny)

    registry.add_plugin(Plugin(), "tiny-model")
    assert get_spec("tiny") is tiny and get_spec("vgg19") is VGG19
    ext = get_extractor("tiny", ["c1"], "auto", seed=1)
    assert ext.weights.fell_back and "tiny has no ImageNet weights file" in (ext.weights.warning or "")
    assert ext(tf.zeros((1, 8, 8, 3)))["c1"].shape == (1, 8, 8, 4)
    registry.remove_plugin("tiny-model")
    with pytest.raises(UnknownModelError):
        get_spec("tiny")


def test_one_rule_says_whether_a_weights_value_is_a_file() -> None:
    # recipes, the weights resolution and the plan each had their own rule; this one reads only the value
    from gradfx.engine.models.weights import is_weights_file

    for value in ("w.h5", "sub/w", "./w", "~/w.weights.h5", "w.keras", "w.bin"):
        assert is_weights_file(value), value
    for value in (None, "auto", " ImageNet ", "hed", "random", "imagenett", "mine"):
        assert not is_weights_file(value), value
    with pytest.raises(WeightsError, match=r"unknown weights 'imagenett' \(did you mean 'imagenet'"):
        resolve_weights(VGG19, "imagenett")


def test_specs_and_weights_resolution_import_no_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, gradfx.engine.modelspecs, gradfx.engine.models.weights, gradfx.engine.running.plan, gradfx.engine.running.execute; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_minimum_size_check() -> None:
    # the solver, the extractor, feature-vis and style transfer each wrote their own; all call this one now
    from gradfx.engine.modelspecs import check_min_size

    check_min_size(32, size=(32, 40))
    check_min_size(32, param="tile", value=0, zero="the whole image")
    with pytest.raises(ParameterError) as err:
        check_min_size(75, model="inception_v3", size=(80, 40))
    assert str(err.value) == ("image size 40x80 is below inception_v3's minimum of 75 px on each side (its width is "
                              "40 px); use a larger size")
    for h, w in ((64, 64), (40, 60)):  # both sides short: WxH says it once (was "(its width is 64 px and height
        with pytest.raises(ParameterError) as err:  # is 64 px)")
            check_min_size(75, model="inception_v3", size=(h, w))
        assert str(err.value) == (f"image size {w}x{h} is below inception_v3's minimum of 75 px on each side; use a "
                                  "larger size")
    with pytest.raises(ParameterError) as err:
        check_min_size(32, model="vgg19", param="size", value=0, where="effect 'x'")  # no zero meaning: 0 is small
    assert str(err.value) == "effect 'x': parameter 'size': 0 is below vgg19's minimum input of 32 px; expected at least 32"
    with pytest.raises(ParameterError, match=r"'tile': 16 .* expected 0 \(off\) or at least 32"):
        check_min_size(32, model="vgg19", param="tile", value=16, zero="off")
    with pytest.raises(ParameterError, match="image size 40x20 is below vgg19's minimum"):
        check_size(VGG19, 20, 40)


def test_an_imagenet_download_is_trusted_only_with_its_pinned_md5(tmp_path, monkeypatch):
    """`auto` and `imagenet` download a missing Keras file when online: it lands in $KERAS_HOME/models only
    when its MD5 is the one the model pins (Keras' own file_hash); a wrong file, or a model with no pinned
    hash, leaves nothing behind and falls back (no download runs through Keras, which would trust any file)."""
    import dataclasses
    import hashlib
    import http.server
    import threading

    from gradfx.engine.models import weights as weights_mod

    body = b"not really an HDF5 file, but the bytes the origin serves"
    handler = type("H", (http.server.BaseHTTPRequestHandler,), {
        "do_GET": lambda self: (self.send_response(200), self.send_header("Content-Length", str(len(body))),
                                self.end_headers(), self.wfile.write(body)),
        "log_message": lambda self, *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("GRADFX_OFFLINE")
    monkeypatch.setattr(weights_mod, "_FAILED_DOWNLOADS", {})
    origin = f"http://127.0.0.1:{server.server_address[1]}/w.h5"
    models = tmp_path / "keras_home" / "models"
    try:
        wrong = dataclasses.replace(VGG16, imagenet_origin=origin, imagenet_md5="0" * 32)
        resolved = resolve_weights(wrong, "auto")
        assert resolved.mode == "hed" and "is not the pinned" in resolved.warning
        assert not list(models.glob("*")) if models.exists() else True  # no file, no temporary left
        unpinned = dataclasses.replace(VGG16, imagenet_origin=origin, imagenet_md5=None, name="vgg16")
        weights_mod.forget_failed_downloads()
        assert "pins no hash" in resolve_weights(unpinned, "auto").warning
        right = dataclasses.replace(VGG16, imagenet_origin=origin, imagenet_md5=hashlib.md5(body).hexdigest())
        weights_mod.forget_failed_downloads()
        resolved = resolve_weights(right, "imagenet")
        assert resolved.mode == "imagenet" and open(resolved.path, "rb").read() == body
        assert sorted(p.name for p in models.iterdir()) == [VGG16.imagenet_file]
        assert (models.stat().st_mode & 0o077) == 0  # made for the user alone
    finally:
        server.shutdown()


def test_auto_fetches_a_missing_network_from_the_package_index_once_showing_the_front_ends_bar(tmp_path,
                                                                                               monkeypatch):
    """auto's third step: no Keras file and no download, so the package index's network for the model is
    fetched, its progress going to the bar a front end installed (entered around the fetch only); with
    GRADFX_OFFLINE=1 nothing is fetched and the fall-back names the network and the command that fetches it."""
    import contextlib

    from gradfx.engine.models import index
    from gradfx.engine.models import weights as weights_mod
    from gradfx.engine.progress import ProgressEvent

    cache = tmp_path / "inception.weights.h5"
    fetched, seen, bars = [], [], []

    def fetch(names, progress=None):
        fetched.append(list(names))
        progress(ProgressEvent("downloading x", 0, 1, 1, 2, 0.0, 0.1))
        cache.write_bytes(b"converted")
        return [cache]

    @contextlib.contextmanager
    def bar():
        bars.append("entered")
        yield seen.append
        bars.append("left")

    monkeypatch.setattr(index, "cached", lambda name: cache if cache.exists() else None)
    monkeypatch.setattr(index, "fetch", fetch)
    offline = resolve_weights(INCEPTION_V3, "auto")
    assert offline.mode == "random" and "gradfx weights fetch inception_v3-imagenet" in offline.warning
    monkeypatch.delenv("GRADFX_OFFLINE")
    monkeypatch.setattr(weights_mod, "_reachable", lambda origin, timeout=5.0: "unreachable")  # no Keras site
    with weights_mod.reporting_fetches(bar):
        resolved = resolve_weights(INCEPTION_V3, "auto")
        again = resolve_weights(INCEPTION_V3, "imagenet")
    assert resolved.mode == again.mode == "imagenet" and resolved.path == str(cache) and not resolved.warning
    assert resolved.network == "inception_v3-imagenet" and "Google's 2015" in resolved.description
    assert fetched == [["inception_v3-imagenet"]] and bars == ["entered", "left"] and len(seen) == 1
