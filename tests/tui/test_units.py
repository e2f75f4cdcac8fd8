"""Unit tests of the TUI's Textual-free parts: the half-block renderer and the chain model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gradfx.engine.errors import ParameterError
from gradfx.tui.chain_model import ChainStep, load_recipe, save_recipe
from gradfx.tui.preview import UPPER_HALF, HalfBlocks, fit, shrink


def test_fit_keeps_the_aspect_ratio_in_half_cells():
    assert fit(100, 100, 40, 10) == (20, 20)  # 20 rows of pixels = 10 cells tall
    assert fit(200, 50, 40, 10) == (40, 10)
    assert fit(10, 10, 0, 5) == (0, 0)


def test_half_blocks_put_the_upper_pixel_in_front_and_the_lower_behind():
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 0] = (1, 0, 0)  # top-left red
    img[1, 0] = (0, 0, 1)  # bottom-left blue
    img[:, 1] = (0, 1, 0)  # right column green
    rows = HalfBlocks(img, 2, 1).lines()
    assert len(rows) == 1 and [s.text for s in rows[0]] == [UPPER_HALF, UPPER_HALF]
    left, right = rows[0]
    assert left.style.color.get_truecolor() == (255, 0, 0)
    assert left.style.bgcolor.get_truecolor() == (0, 0, 255)
    assert right.style.color.get_truecolor() == right.style.bgcolor.get_truecolor() == (0, 255, 0)


def test_half_blocks_fill_exactly_the_area_given(make_image):
    for h, w, cols, rows in ((40, 48, 30, 7), (10, 80, 20, 9), (33, 17, 11, 4)):
        lines = HalfBlocks(make_image(h, w), cols, rows).lines()
        assert len(lines) == rows
        assert all(sum(len(s.text) for s in line) == cols for line in lines)
    out = Console(width=30, record=True, color_system="truecolor", file=io.StringIO())
    out.print(HalfBlocks(make_image(40, 48), 30, 7))
    assert out.export_text().rstrip("\n").count("\n") == 6  # 7 lines


def test_shrink_bounds_what_the_engine_thread_hands_over(make_image):
    small = shrink(make_image(600, 300), 100)
    assert small.dtype == np.uint8 and small.shape == (100, 50, 3)
    assert shrink(make_image(1, 2, "noise")[None]).shape == (1, 2, 3)  # a batch: its first image


def test_chain_step_values_errors_and_params(tiny_registry):
    eff = tiny_registry.effects["tiny-dream"]
    step = ChainStep("tiny-dream")
    assert step.text(eff.schema["steps"]) == "2" and step.text(eff.schema["invert"]) is False
    assert step.params(eff) == {} and step.errors(eff) == {}
    step.values.update(steps="500", lr="0.5", layer="block1_conv2")
    assert "from 1 to 50" in step.errors(eff)["steps"]
    try:
        step.params(eff)
    except ParameterError as exc:
        assert "steps" in str(exc)
    else:
        raise AssertionError("expected a ParameterError")
    step.values["steps"] = "7"
    assert step.params(eff) == {"steps": 7, "lr": 0.5}  # the default layer is not repeated
    step.values["guide"] = "  "
    assert step.params(eff) == {"steps": 7, "lr": 0.5}  # an emptied optional field is unset
    assert step.changed(eff) == 2  # what the chain shows as "2 set": not the default layer, not the empty guide
    step.values["lr"] = "2"
    assert step.changed(eff) == 2  # a bad value counts: the user set it
    dup = step.copy()
    dup.values["steps"] = "8"
    assert step.values["steps"] == "7"


def test_recipe_round_trip_keeps_image_paths_findable(tiny_registry, tmp_path):
    guide = tmp_path / "images" / "g.png"
    guide.parent.mkdir()
    guide.write_bytes(b"")
    path = save_recipe(tmp_path / "r.toml", [("tiny-dream", {"steps": 3, "guide": "images/g.png"}, None),
                                             ("tiny-dream", {"invert": True}, "vgg16")], seed=4)
    loaded = load_recipe(path, {"tiny-dream": [p for p in tiny_registry.effects["tiny-dream"].schema if p.has_paths]})
    assert [s.effect for s in loaded.steps] == ["tiny-dream", "tiny-dream"]
    assert loaded.steps[0].values == {"steps": "3", "guide": str(guide)}
    assert loaded.steps[1].values == {"invert": True} and loaded.steps[1].model == "vgg16"
    assert loaded.seed == 4


def test_headless_commands_do_not_import_textual():
    code = ("import sys; from gradfx.tui import cli; cli.build_parser().parse_args(['list']); "
            "assert 'textual' not in sys.modules, 'textual imported'; "
            "import gradfx.tui.commands.tui; assert 'textual' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent, timeout=60)


def test_run_fraction_spans_the_whole_chain():
    # run_chain counts total_step within each chain step: the bar went 0-100% per step, so a two-step chain
    # showed 100% halfway through
    from gradfx.engine.progress import ProgressEvent

    def event(stage: str, done: int, total: int) -> ProgressEvent:
        return ProgressEvent(stage, 0, 1, done, total, 1.0, 0.0, total_step=done, total_steps=total)

    assert event("step 1/2 deepdream · octave 1/1 (64x48)", 10, 10).run_fraction == 0.5
    assert event("step 2/2 style-transfer · scale 1/1 (64x48)", 5, 10).run_fraction == 0.75
    assert event("step 1/1 deepdream · octave 1/3 (64x48)", 3, 12).run_fraction == 0.25
    assert event("octave 1/3 (64x48)", 3, 12).run_fraction == 0.25  # a run outside a chain


def _event(stage: str, step: int, steps: int, elapsed: float, total_step: int, total_steps: int):
    from gradfx.engine.progress import ProgressEvent

    return ProgressEvent(stage, 0, 1, step, steps, 1.0, elapsed, total_step=total_step, total_steps=total_steps)


def test_the_status_says_each_thing_once():
    from gradfx.tui.run_status import describe

    # the engine's stage text of a one-step chain with one stage: "step 1/1 feature-vis · feature-vis 1/1 (224x224)"
    assert describe(_event("step 1/1 feature-vis · feature-vis 1/1 (224x224)", 3, 20, 1, 3, 20)) == \
        ("feature-vis", "224x224")
    assert describe(_event("step 2/3 deepdream · octave 2/3 (448x336)", 3, 20, 1, 23, 60)) == \
        ("step 2/3 deepdream", "octave 2/3 (448x336)")
    assert describe(_event("octave 1/1 (64x48)", 1, 2, 1, 1, 2)) == ("", "64x48")


def test_the_eta_leaves_out_the_first_step_s_model_building():
    from gradfx.tui.run_status import eta

    # the first step took 7 s (building and tracing the model), each later one 0.1 s: 0:37 was said for 8 s
    first = _event("octave 1/1 (64x48)", 1, 20, 7.0, 1, 20)
    start = (first.elapsed, first.total_step)
    assert eta(first, start) is None  # not known yet
    assert eta(_event("octave 1/1 (64x48)", 5, 20, 7.4, 5, 20), start) == pytest.approx(1.5)
    assert first.eta == pytest.approx(133.0)  # the engine's mean over every step, for contrast


def test_chain_step_shows_the_defaults_of_the_model_its_default_follows_to(tiny_registry):
    from gradfx.engine import Float, Str
    from gradfx.engine.effect import Effect

    class Dream(Effect):
        name, model = "dream", "inception_v3"
        params = (Float("step", 0.01, "step size").per_model("the example", vgg16=(0.002, "tuned")),
                  Str("layers", "mixed4", "layers").per_model("the example", names_layers=True,
                                                              vgg16=("block4_conv3", "tuned")))

    eff = Dream()
    step = ChainStep("dream")
    step.follow("vgg16", eff)
    assert step.followed == step.defaults_model == "vgg16"
    assert step.text(eff.schema["step"]) == "0.002" and step.params(eff) == {}
    step.values["step"] = "0.01"  # the effect's own default, typed: it differs from what the run would use
    assert step.params(eff) == {"step": 0.01}
    assert step.copy().followed == "vgg16"
    # a layer-naming value keeps the default model in a run, so the form compares with its defaults again
    step.values["layers"] = "mixed3"
    assert step.followed is None and step.defaults_model == "inception_v3"
    assert step.params(eff) == {"layers": "mixed3"}
    del step.values["layers"]
    step.model = "inception_v3"  # named: its own defaults
    assert step.defaults_model == "inception_v3" and step.text(eff.schema["step"]) == "0.01"


def test_a_value_that_does_not_apply_is_neither_passed_nor_counted_nor_checked():
    from gradfx.engine import Choice, Float
    from gradfx.engine.effect import Effect

    class Styled(Effect):
        name, model = "styled", "vgg19"
        params = (Choice("optimizer", "adam", ("adam", "lbfgs"), "x").per_model("x", vgg16=("lbfgs", "tuned")),
                  Float("lr", 0.02, "Adam's step", min=0, max=1).only_when(optimizer="adam"))

    eff, step = Styled(), ChainStep("styled")
    lr = eff.schema["lr"]
    assert step.applies(lr, eff)
    step.values["lr"] = "0.5"
    assert step.params(eff) == {"lr": 0.5} and step.changed(eff) == 1
    step.values["optimizer"] = "lbfgs"  # L-BFGS has no learning rate: lr is kept for later, not passed
    assert not step.applies(lr, eff) and step.params(eff) == {"optimizer": "lbfgs"} and step.changed(eff) == 1
    step.values["lr"] = "fast"
    assert step.errors(eff) == {} and step.problems(eff) == {}  # a hidden field cannot hold up a run
    step.values["optimizer"] = "adam"
    assert "lr" in step.errors(eff)
    del step.values["optimizer"]
    step.model = "vgg16"  # its default optimizer is L-BFGS
    assert not step.applies(lr, eff)
    step.values["optimizer"] = "sgd"  # not a value optimizer takes: the field stays in view
    assert step.applies(lr, eff)


def test_the_sparkline_is_not_flattened_by_the_first_losses():
    from gradfx.tui.run_status import SPARK_POINTS, sparkline_losses

    def spread_of_the_rest(shown: list[float], skip: int) -> float:
        """How much of the drawn height the losses after the first ``skip`` span (1: all of it)."""
        rest = shown[skip:]
        return (max(rest) - min(rest)) / (max(shown) - min(shown))

    # style transfer from the photograph: the first loss 1e4 times the rest, which still fall by half
    losses = [3e7, *(3000 - 15 * i for i in range(100))]
    assert spread_of_the_rest(losses, 1) < 1e-3  # as drawn before: a flat line at the bottom
    shown = sparkline_losses(losses)
    assert spread_of_the_rest(shown, 1) > 0.7 and shown[0] == max(shown) and shown[1:] == losses[1:]
    # a steep start over several steps, then a slow fall: the slow fall fills most of the height
    steep = [1e6 / 4 ** i + 100 - i for i in range(60)]
    assert spread_of_the_rest(sparkline_losses(steep), 10) > 0.5 > spread_of_the_rest(steep, 10) * 1e3
    # an even curve is drawn as it is; non-finite losses are left out; at most the latest SPARK_POINTS
    even = [float(100 - i) for i in range(50)]
    assert sparkline_losses(even) == even
    assert sparkline_losses([float("nan"), 5.0, float("inf"), 4.0]) == [5.0, 4.0]
    assert sparkline_losses(even * 10)[-1] == even[-1] and len(sparkline_losses(even * 10)) == SPARK_POINTS
    assert sparkline_losses([9e9, 2.0, 2.0, 2.0]) == [9e9, 2.0, 2.0, 2.0]  # nothing to judge an outlier by


def test_a_step_that_follows_nowhere_shows_its_effect_s_own_model_defaults():
    """The form showed deepdream's base max_loss (15) where a run on inception_v3 uses its own default (20)."""
    from gradfx.engine.registry import get_registry

    eff = get_registry().effect("deepdream")
    p = eff.schema["max_loss"]
    assert p.default_for("inception_v3") != p.default, "the test needs a per-model default"
    step = ChainStep("deepdream")
    step.follow(None, eff)
    assert step.defaults_model == "inception_v3" and step.text(p) == p.format(p.default_for("inception_v3"))
    assert step.changed(eff) == 0  # the default shown is no change of the user's
    step.follow("vgg16", eff)  # followed to the trained VGG16: its defaults
    assert step.text(p) == p.format(p.default_for("vgg16"))
