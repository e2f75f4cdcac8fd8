"""``gradfx demo`` with its real built-in recipes shrunk to a step or two (CI runs the full-size demo)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomli_w

from gradfx.engine.images import samples, sheets
from gradfx.engine.running.recipes import loads_recipe, validate_recipe
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


def test_the_command_each_built_in_recipe_gives_to_run_it_checks_ok(registry, tmp_path, monkeypatch, capsys):
    # style-dream.toml said "Run it yourself: gradfx chain style-dream.toml", but its images exist only where
    # gradfx demo wrote them: --check failed with "painting.png does not exist"
    import re

    monkeypatch.chdir(tmp_path)
    samples.write_samples(tmp_path / "gradfx-demo", 64)
    for name in demo.DEMO_RECIPES:
        text = demo.recipe_text(name)
        (tmp_path / "gradfx-demo" / f"{name}.toml").write_text(text)
        commands = re.findall(r"^#.*gradfx chain (\S+\.toml)", text, re.M)
        assert commands == [f"gradfx-demo/{name}.toml"], commands
        assert main(["chain", commands[0], "--check"]) == 0, capsys.readouterr().err


def test_samples_are_deterministic_images_with_structure():
    a, b = samples.landscape(96), samples.landscape(96)
    assert a.shape == (96, 128, 3) and a.dtype == np.float32 and a.tobytes() == b.tobytes()
    p = samples.painting(96)
    assert p.shape == (96, 96, 3) and 0.0 <= p.min() and p.max() <= 1.0
    for img in (a, p):
        assert img.std() > 0.1 and np.abs(np.diff(img, axis=1)).mean() > 0.005  # not flat, not noise-free


def shrink(text: str, *, size: int = 104, channel_size: int = 80) -> str:
    """A built-in recipe with every step cut to one or two steps (one octave) at small sizes: ``size`` the
    style transfer's output (104x78: InceptionV3, DeepDream's, needs 75 px), ``channel_size`` feature-vis's."""
    data = tomllib.loads(text)
    for step in data["step"]:
        step["steps"] = 2 if step["effect"] != "deepdream" else 1
        if step["effect"] == "deepdream":
            step["octaves"] = 1
        if "size" in step:
            step["size"] = size if step["effect"] == "style-transfer" else channel_size
    return tomli_w.dumps(data)


@pytest.fixture
def tiny_recipes(monkeypatch):
    """The real recipes with every step cut to one or two steps at the smallest sizes."""
    real = demo.recipe_text

    def shrunk(name: str) -> str:
        return shrink(real(name))

    monkeypatch.setattr(demo, "recipe_text", shrunk)
    monkeypatch.setattr(demo, "SAMPLE_SIZE", 48)
    shrunk.real = real  # the recipes as shipped
    return shrunk


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


class _Said(list):
    """stderr before each recipe's compute, in order; ``after()``: what came after the last began."""

    def __init__(self, capsys):
        super().__init__()
        self.after = lambda: capsys.readouterr().err


@pytest.fixture
def said_before_compute(monkeypatch, capsys):
    """What the demo printed before each recipe's compute began (:class:`_Said`)."""
    real, before = demo.execute, _Said(capsys)

    def execute(plan, **options):
        before.append(capsys.readouterr().err)
        return real(plan, **options)

    monkeypatch.setattr(demo, "execute", execute)
    return before


@pytest.fixture
def titles(monkeypatch):
    """The overview's title lines, as the demo drew them."""
    real, drawn = demo._grid, []
    monkeypatch.setattr(demo, "_grid", lambda tiles, *, title, **kw: drawn.extend(title) or real(tiles, title=title,
                                                                                                 **kw))
    return drawn


def _stand_in(monkeypatch, folder=None) -> None:
    """Seeded random weights stand in for the trained networks (fast tests run no trained network): for the
    HED-fine-tuned VGG16's file, and with a ``folder`` for VGG19's and InceptionV3's ImageNet files, found in
    place there (empty files) as if fetched."""
    from gradfx.engine.models import trained_vgg16, weights

    monkeypatch.setattr(trained_vgg16, "load_into", lambda model, path: weights.init_random(model, 0))
    if folder is not None:
        real = weights._locate_imagenet
        for name in ("vgg19", "inception_v3"):
            (folder / f"{name}-imagenet.h5").write_bytes(b"")
        monkeypatch.setattr(weights, "_locate_imagenet", lambda spec, top, **kw: (
            (str(folder / f"{spec.name}-imagenet.h5"), "") if spec.name in ("vgg19", "inception_v3") and not top
            else real(spec, top, **kw)))
        monkeypatch.setattr(weights, "_load_weights_file", lambda model, spec, path, top: weights.init_random(model, 1))


def _step_models(report: dict) -> list[tuple[str, str, str]]:
    return [(s["effect"], s["model"], s["weights"]["resolved"]) for r in report["recipes"].values()
            for s in r["reports"]]


def test_on_the_imagenet_networks_each_effect_runs_on_its_own_with_its_defaults_and_the_demo_names_them(
        registry, tiny_recipes, tmp_path, monkeypatch, said_before_compute, titles):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _stand_in(monkeypatch, tmp_path)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    assert "warning" not in "".join(said_before_compute) + said_before_compute.after()
    report = json.loads((out / "report.json").read_text())
    assert _step_models(report) == [("style-transfer", "vgg19", "imagenet"), ("deepdream", "inception_v3", "imagenet"),
                                    ("feature-vis", "inception_v3", "imagenet")]
    assert report["weights"] == "imagenet"
    assert [(n["model"], n["effects"]) for n in report["networks"]] == [
        ("vgg19", ["style-transfer"]), ("inception_v3", ["deepdream", "feature-vis"])]
    style, dream = report["recipes"]["style-dream"]["reports"]
    assert style["params"]["optimizer"] == "lbfgs" and style["params"]["style_weight"] == 0.01  # VGG19's own
    assert dream["params"]["layers"].startswith("mixed4")  # InceptionV3's own defaults
    fv = report["recipes"]["feature-vis"]["reports"][0]["feature_vis"]
    assert fv["labels"] == [f"mixed4_pre_relu:{c}" for c in range(8)]  # InceptionV3's default layer, 8 channels
    assert titles[1:] == ["style-transfer on vgg19: ImageNet (the Keras application file)",
                          "deepdream, feature-vis on inception_v3: ImageNet (the Keras application file)"]


def test_offline_the_demo_runs_on_the_trained_vgg16_and_says_so_once_before_any_compute(
        registry, tiny_recipes, tmp_path, monkeypatch, said_before_compute, titles):
    # three steps follow the weights to VGG16: three notes, each naming its effect, came out; the demo says one
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # nothing cached; GRADFX_OFFLINE=1 (conftest)
    _stand_in(monkeypatch)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    first, after = said_before_compute[0], "".join(said_before_compute[1:]) + said_before_compute.after()
    assert first.count("warning") == 1 and "warning" not in after, (first, after)
    line = next(x for x in first.splitlines() if "warning" in x)
    assert "(vgg19, inception_v3)" in line and "style-transfer, deepdream, feature-vis run on vgg16, with their vgg16 defaults" in line
    assert "HED-fine-tuned VGG16" in line and "gradfx weights fetch" in line
    report = json.loads((out / "report.json").read_text())
    assert {m for _, m, _ in _step_models(report)} == {"vgg16"} and report["weights"] == "hed"
    assert [(n["model"], n["effects"]) for n in report["networks"]] == [
        ("vgg16", ["style-transfer", "deepdream", "feature-vis"])]
    fv = report["recipes"]["feature-vis"]["reports"][0]["feature_vis"]
    assert fv["labels"] == [f"block4_conv1:{c}" for c in range(8)]  # VGG16's default layer, the same 8 channels
    assert titles[1].startswith("style-transfer, deepdream, feature-vis on vgg16: HED-fine-tuned VGG16"), titles


def test_without_trained_weights_the_demo_says_its_random_fall_backs_before_any_compute_and_not_again(
        registry, tiny_recipes, tmp_path, monkeypatch, no_trained_vgg16, said_before_compute, titles):
    # the fall-back line came after the recipes' lines, 40-70 s into the demo
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert main(["demo", "-o", str(tmp_path / "demo"), "-q"]) == 0
    first, after = said_before_compute[0], said_before_compute.after()
    for model in ("vgg19", "inception_v3"):
        assert f"gradfx: warning: no ImageNet weights for {model}" in first and "random weights" in first
    assert "".join(said_before_compute[1:]).count("warning") == 0 and "warning" not in after, (first, after)
    assert "RANDOM weights" in after and "gradfx weights fetch" in after
    assert "RANDOM" in titles[1] and titles[2].startswith("style-transfer on vgg19: random"), titles


def test_the_demo_s_outputs_are_large_enough_to_judge_and_its_overview_has_no_empty_slot(registry, tiny_recipes,
                                                                                         tmp_path, capsys,
                                                                                         monkeypatch):
    """Its outputs were 160 px, its feature-vis tiles 96 px (64 px on the overview, inside a 3x3 contact sheet
    with an empty slot) and the overview's last row had an empty slot."""
    for name in demo.DEMO_RECIPES:
        for step in tomllib.loads(tiny_recipes.real(name))["step"]:
            if step["effect"] == "feature-vis":
                assert step["size"] >= 128, step
            elif "size" in step:
                assert step["size"] >= 256, step  # the chain's output: its later steps keep the size
    real, made = demo.overview_tiles, []
    monkeypatch.setattr(demo, "overview_tiles", lambda *a: made.extend(real(*a)) or made)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # offline: VGG16 for every step, the quickest
    _stand_in(monkeypatch)
    assert main(["demo", "-o", str(tmp_path / "demo"), "-q"]) == 0, capsys.readouterr().err
    labels = [label for label, _ in made]
    channels = [label for label in labels if label.startswith("feature-vis: ")]
    assert len(channels) == 8 and not any("0-" in label for label in channels), labels  # each channel on its own
    assert len(made) % sheets.balanced_columns(len(made)) == 0, labels  # every row full


def test_a_contact_sheet_of_eight_has_two_full_rows():
    from gradfx.plugins.feature_vis import contact_sheet

    assert [sheets.balanced_columns(n) for n in (2, 4, 6, 8, 9, 12, 16)] == [2, 2, 3, 4, 3, 4, 4]
    assert sheets.balanced_columns(7) == 3  # a prime: one row short, as few as can be
    sheet = contact_sheet([np.full((16, 16, 3), 0.5, np.float32)] * 8, [str(i) for i in range(8)], gap=2)
    assert sheet.shape[1] == 4 * 16 + 5 * 2  # four columns, two rows (it was 3x3 with an empty slot)


# ----------------------------------------------------------------------- labels on the sheets, never cut short
def test_wrapped_labels_fit_their_width_and_lose_nothing():
    from gradfx.engine.images import sheets

    font = sheets.label_font(10)
    label = "feature-vis: direction(block3_conv1, 'vectors/a-long-name.npy') - 0.5*tv"
    lines = sheets.wrap_label(label, 64, font)
    assert "".join(lines) == label and len(lines) > 2
    assert all(font.getlength(line.rstrip()) <= 64 for line in lines)
    assert sheets.wrap_label("block3_conv1:0", 64, font) == ["block3_", "conv1:0"]  # breaks after _ or :
    assert sheets.wrap_label("short", 64, font) == ["short"] and sheets.wrap_label("", 64, font) == [""]
    assert sheets.wrap_label("abc", 1, font) == ["a", "b", "c"]  # one character a line at the least


def _ink_rows(region: np.ndarray) -> int:
    """How many separate bands of rows hold ink (text lines) in a sheet region."""
    ink = (region.min(axis=(1, 2)) < 0.5).astype(int)
    return int(np.sum(np.diff(np.concatenate([[0], ink])) == 1))


def test_the_feature_vis_contact_sheet_wraps_labels_inside_their_cells():
    from gradfx.plugins.feature_vis import contact_sheet

    grey = np.full((64, 64, 3), 0.8, np.float32)
    labels = ["block3_conv1:0", "block3_conv1:1", "mixed4:97 - 0.5*mixed4:3 + 100*diversity(mixed4)"]
    sheet = contact_sheet([grey] * 3, labels, columns=3)  # 64 px cells, 2 px apart
    strip = sheet[2 + 64:]
    assert strip.shape[1] == 3 * 64 + 4 * 2
    for x in (0, 66, 132, 198):  # the gaps between cells and at the edges stay white: no label overflows
        assert strip[:, x:x + 2].min() > 0.9, x  # (anti-aliasing may leave a trace of 1/255)
    assert _ink_rows(strip[:, 2:66]) == 2 and _ink_rows(strip[:, 134:198]) >= 4  # wrapped, not cut


def test_the_demo_overview_wraps_long_labels_and_the_title():
    grey = np.full((100, 100, 3), 0.8, np.float32)
    long = "feature-vis: " + "block3_conv1:0-7 " * 6
    sheet = demo._grid([(long, grey), ("short", grey)], title=["weights: RANDOM " + "x" * 200], height=200,
                       gap=10)
    assert sheet.shape[1] == 640  # the sheet keeps its width: the labels and the title wrap instead
    assert sheet[:, -10:].min() > 0.9 and sheet[:, :10].min() > 0.9  # nothing runs off either side
    title_h = int(np.argmax(np.abs(sheet[:, 10:210] - 0.8).max(axis=(1, 2)) < 0.01))  # the first image's top
    strip = sheet[title_h + 200:]
    assert strip[:, 210:220].min() > 0.9  # the long label stays in its 200 px cell
    assert _ink_rows(strip[:, 10:210]) >= 4 and _ink_rows(sheet[:title_h, 10:630]) >= 2


def test_the_demo_says_it_fetches_the_imagenet_networks_once_before_it_fetches_them(registry, monkeypatch, capsys):
    from gradfx.engine.models.weights import ResolvedWeights

    cached = {"vgg19": ResolvedWeights("imagenet", "/cache/vgg19.h5"), "inception_v3": ResolvedWeights("imagenet")}
    monkeypatch.setattr(demo, "preview_auto", lambda spec: cached[spec.name])  # InceptionV3: a run fetches it
    demo.say_fetches(registry, ["vgg19", "inception_v3", "inception_v3", None], "auto")
    assert capsys.readouterr().err.startswith("gradfx demo: fetching the ImageNet networks it runs on "
                                              "(inception_v3) once")
    demo.say_fetches(registry, ["vgg19", "inception_v3"], "random")  # nothing fetched: nothing said
    cached["inception_v3"] = ResolvedWeights("hed", "/x")  # offline: the fall-back line says it, after planning
    demo.say_fetches(registry, ["vgg19", "inception_v3"], "auto")
    assert capsys.readouterr().err == ""
