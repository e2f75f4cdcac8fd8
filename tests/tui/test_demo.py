"""``gradfx demo`` with its real built-in recipes shrunk to a step or two (CI runs the full-size demo)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomli_w

from gradfx.engine import samples
from gradfx.engine.recipes import loads_recipe, validate_recipe
from gradfx.tui.cli import main
from gradfx.tui.commands import demo

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def test_the_built_in_recipes_are_valid_and_use_only_parameters_the_effects_declare(registry, tmp_path):
    samples.write_samples(tmp_path, 64)
    for name in demo.DEMO_RECIPES:
        recipe = loads_recipe(demo.recipe_text(name), source=name, base_dir=tmp_path)
        assert validate_recipe(recipe, registry=registry)
    style_dream = loads_recipe(demo.recipe_text("style-dream"))
    assert [s.effect for s in style_dream.steps] == ["style-transfer", "deepdream"]
    assert loads_recipe(demo.recipe_text("feature-vis")).steps[0].effect == "feature-vis"


def test_samples_are_deterministic_images_with_structure():
    a, b = samples.landscape(96), samples.landscape(96)
    assert a.shape == (96, 128, 3) and a.dtype == np.float32 and a.tobytes() == b.tobytes()
    p = samples.painting(96)
    assert p.shape == (96, 96, 3) and 0.0 <= p.min() and p.max() <= 1.0
    for img in (a, p):
        assert img.std() > 0.1 and np.abs(np.diff(img, axis=1)).mean() > 0.005  # not flat, not noise-free


@pytest.fixture
def tiny_recipes(monkeypatch):
    """The real recipes with every step cut to one or two steps at the smallest sizes."""
    real = demo.recipe_text

    def shrunk(name: str) -> str:
        data = tomllib.loads(real(name))
        for step in data["step"]:
            step["steps"] = 2 if step["effect"] != "deepdream" else 1
            if "size" in step:
                step["size"] = 48 if step["effect"] == "style-transfer" else 32
            if "octaves" in step:
                step["octaves"] = 1
        return tomli_w.dumps(data)

    monkeypatch.setattr(demo, "recipe_text", shrunk)
    monkeypatch.setattr(demo, "SAMPLE_SIZE", 48)


def test_demo_writes_samples_recipes_outputs_and_an_overview_and_says_weights_were_random(
        registry, tiny_recipes, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q", "--weights", "random"]) == 0
    err = capsys.readouterr().err
    for name in ("landscape.png", "painting.png", "style-dream.toml", "style-dream.png", "feature-vis.toml",
                 "feature-vis.png", "overview.png", "report.json", "style-dream-steps/step01-style-transfer.png",
                 "style-dream-steps/step02-deepdream.png"):
        assert (out / name).is_file(), name
    assert "RANDOM weights" in err and "no learned features" in err
    report = json.loads((out / "report.json").read_text())
    assert report["weights"] == "random" and set(report["recipes"]) == {"style-dream", "feature-vis"}
    assert report["recipes"]["style-dream"]["chain"] == ["style-transfer", "deepdream"]
    from PIL import Image

    overview = Image.open(out / "overview.png")
    assert overview.width >= 640 and overview.height > 200
    # the copied recipe re-runs with gradfx chain from anywhere (its paths are relative to itself)
    assert main(["chain", str(out / "style-dream.toml"), "-o", str(tmp_path / "again.png"), "-q",
                 "--weights", "random"]) == 0
    assert np.asarray(Image.open(tmp_path / "again.png")).tobytes() == \
        np.asarray(Image.open(out / "style-dream.png")).tobytes()
