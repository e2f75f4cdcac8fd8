"""Chain recipes: parsing, validation before any compute, paths relative to the recipe, save/load, and a
chain giving exactly the image of its steps run one by one with ``gradfx run``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TinyDream, TinyPlugin
from PIL import Image as PILImage

from gradfx.engine import Effect, Image, ImageError, Output, ParameterError, RecipeError, run_chain
from gradfx.engine.running import execute
from gradfx.engine.running.recipes import load_recipe, loads_recipe, run_recipe, save_recipe, validate_recipe
from gradfx.tui.cli import main


class Tint(Effect):
    name = "tint"
    summary = "blend the input halfway toward an image's mean colour (no TensorFlow)"
    params = (Image("overlay", "image whose mean colour is blended in", required=True),)

    def run(self, ctx, params):
        colour = ctx.image(params["overlay"]).rgb.mean(axis=(0, 1))
        return Output(0.5 * ctx.input.rgb + 0.5 * colour)


@pytest.fixture
def reg(registry):
    registry.add_plugin(TinyPlugin(TinyDream(), Tint()), "recipe-test")
    return registry


def png(path: Path, kind: int = 0, size: int = 32) -> Path:
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([x * 7 + kind * 40, y * 7, (x * y + kind * 90) % 256], -1) % 256
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def pixels(path: Path) -> bytes:
    return np.asarray(PILImage.open(path).convert("RGB")).tobytes()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_two_step_recipe_gives_the_image_of_two_gradfx_runs_in_sequence(reg, tmp_path):
    src = png(tmp_path / "in.png")
    recipe = write(tmp_path / "two.toml", """
        seed = 7
        weights = "random"
        [[step]]
        effect = "tiny-dream"
        steps = 3
        [[step]]
        effect = "tiny-dream"
        layer = "block2_conv1"
    """)
    snaps = tmp_path / "snaps"
    assert main(["chain", str(recipe), str(src), "-o", str(tmp_path / "chain.png"), "-q",
                 "--snapshots", str(snaps)]) == 0
    common = ["-q", "--weights", "random", "--seed", "7"]
    assert main(["run", "tiny-dream", str(src), "-o", str(tmp_path / "a.png"), "-p", "steps=3", *common]) == 0
    assert main(["run", "tiny-dream", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"),
                 "-p", "layer=block2_conv1", *common]) == 0
    assert pixels(tmp_path / "chain.png") == pixels(tmp_path / "b.png")
    assert pixels(snaps / "step01-tiny-dream.png") == pixels(tmp_path / "a.png")  # snapshot = next input
    assert pixels(tmp_path / "chain.png") != pixels(src)


def test_the_api_runs_the_same_recipe_file(reg, tmp_path):
    png(tmp_path / "recipes" / "in.png")
    recipe = write(tmp_path / "recipes" / "r.toml", """
        input = "in.png"
        weights = "random"
        seed = 7
        [[step]]
        effect = "tiny-dream"
        steps = 3
        [[step]]
        effect = "tiny-dream"
        layer = "block2_conv1"
    """)
    result = run_recipe(recipe)
    again = run_recipe(load_recipe(recipe), tmp_path / "recipes" / "in.png")
    other_seed = run_recipe(recipe, seed=8)
    assert result.report["chain"] == ["tiny-dream", "tiny-dream"] and result.report["steps_run"] == 2
    assert result.report["recipe"].endswith("r.toml") and result.report["seed"] == 7
    assert result.image.tobytes() == again.image.tobytes()
    assert result.image.tobytes() != other_seed.image.tobytes()
    losses = result.report["reports"][0]["losses"]
    assert losses[-1] > losses[0]


def test_image_paths_resolve_relative_to_the_recipe_not_the_working_folder(reg, tmp_path, monkeypatch):
    png(tmp_path / "r" / "img" / "overlay.png", kind=3)
    png(tmp_path / "r" / "in.png")
    recipe = write(tmp_path / "r" / "tint.toml", """
        input = "in.png"
        [[step]]
        effect = "tint"
        overlay = "img/overlay.png"
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["chain", str(recipe), "-o", "out.png", "-q"]) == 0
    assert (elsewhere / "out.png").is_file()
    assert main(["chain", str(recipe), "-q"]) == 0  # default output name: <input>-<recipe>.png
    assert (elsewhere / "in-tint.png").is_file()


def test_an_unknown_parameter_fails_before_any_compute_naming_the_step(reg, tmp_path, monkeypatch):
    def no_compute(*a, **k):
        raise AssertionError("computed before validating")

    monkeypatch.setattr(execute, "_run_step", no_compute)
    recipe = write(tmp_path / "bad.toml", """
        [[step]]
        effect = "tiny-dream"
        [[step]]
        effect = "tiny-dream"
        stepz = 3
    """)
    with pytest.raises(ParameterError) as err:
        run_recipe(recipe, png(tmp_path / "in.png"))
    message = str(err.value)
    assert "bad.toml: step 2 (tiny-dream)" in message
    assert "'stepz'" in message and "did you mean 'steps'" in message


def test_an_unknown_parameter_is_reported_fast_without_importing_tensorflow(tmp_path):
    recipe = write(tmp_path / "bad.toml", """
        [[step]]
        effect = "deepdream"
        [[step]]
        effect = "deepdream"
        octavez = 2
    """)
    png(tmp_path / "in.png")
    code = textwrap.dedent(f"""
        import sys
        from gradfx.tui.cli import main
        code = main(["chain", {str(recipe)!r}, {str(tmp_path / "in.png")!r}, "-o", {str(tmp_path / "o.png")!r}])
        print("tensorflow-imported" if "tensorflow" in sys.modules else "tensorflow-not-imported", code)
    """)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "GRADFX_PLUGINS": "none"})
    assert "step 2 (deepdream)" in out.stderr and "'octavez'" in out.stderr, out.stderr
    assert out.stdout.split()[-2:] == ["tensorflow-not-imported", "2"], out.stdout
    assert not (tmp_path / "o.png").exists()
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("text, message", [
    ("[[step]]\neffect = 'tint'\n[step]\n", "not valid TOML"),
    ("seed = 1\n", "no steps"),
    ("[step]\neffect = 'tint'\n", "double brackets"),
    ("sed = 1\n[[step]]\neffect = 'tint'\n", "unknown top-level key 'sed' (did you mean 'seed'?)"),
    ("steps = 1\n[[step]]\neffect = 'tint'\n", "effect parameters go inside a [[step]] table"),
    ("seed = -1\n[[step]]\neffect = 'tint'\n", "seed must be a whole number"),
    ("seed = 4294967296\n[[step]]\neffect = 'tint'\n", "seed must be a whole number from 0 to 4294967295"),
    ("[[step]]\nsteps = 3\n", "step 1: needs effect"),
    ("[[step]]\neffect = 'tint'\n[step.overlay]\nx = 1\n", "step 1 (tint): parameter 'overlay' is a table"),
])
def test_malformed_recipes_are_recipe_errors(text, message):
    with pytest.raises(RecipeError) as err:
        loads_recipe(text, source="r.toml")
    assert message in str(err.value) and str(err.value).startswith("r.toml")


@pytest.mark.parametrize("step, error, message", [
    ("effect = 'tiny-dreem'", "UnknownEffectError", "step 1 (tiny-dreem): unknown effect 'tiny-dreem' (did you mean"),
    ("effect = 'tiny-dream'\nsteps = 0", "ParameterError", "step 1 (tiny-dream): parameter 'steps'"),
    ("effect = 'tint'\noverlay = 'missing.png'", "ParameterError", "step 1 (tint): parameter 'overlay'"),
    ("effect = 'tint'", "ParameterError", "overlay"),
])
def test_validation_names_the_step_and_the_parameter(reg, tmp_path, step, error, message):
    recipe = loads_recipe(f"[[step]]\n{step}\n", source="r.toml", base_dir=tmp_path)
    with pytest.raises(Exception) as err:
        validate_recipe(recipe)
    assert type(err.value).__name__ == error and message in str(err.value), str(err.value)


def test_chain_check_validates_only(reg, tmp_path, capsys):
    recipe = write(tmp_path / "ok.toml", "[[step]]\neffect = 'tiny-dream'\n[[step]]\neffect = 'tiny-dream'\n")
    assert main(["chain", str(recipe), "--check"]) == 0
    assert "2 step(s): tiny-dream -> tiny-dream" in capsys.readouterr().out


@pytest.mark.parametrize("top, fragment", [
    ("model = 'vgg91'\n", "step 1 (tiny-dream): unknown model 'vgg91' (did you mean 'vgg19'"),
    ("weights = 'imagnet'\n", "step 1 (tiny-dream): unknown weights 'imagnet' (did you mean 'imagenet'"),
    ("weights = 'gone.weights.h5'\n", "not found; check the path"),
])
def test_chain_check_checks_models_and_a_weights_file(reg, tmp_path, capsys, top, fragment):
    recipe = write(tmp_path / "r.toml", f"{top}[[step]]\neffect = 'tiny-dream'\n")
    assert main(["chain", str(recipe), "--check"]) == 2  # --check said ok and the run then failed
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err, err


def test_chain_check_says_the_fall_backs_a_run_takes_and_refuses_what_it_refuses(reg, tmp_path, capsys,
                                                                                 monkeypatch, no_trained_vgg16):
    # --check said "ok" for a recipe whose model gets random weights here, and for what the run then refused
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file, no trained VGG16
    png(tmp_path / "in.png")
    ok = write(tmp_path / "ok.toml", "input = 'in.png'\n[[step]]\neffect = 'tiny-dream'\n")
    assert main(["chain", str(ok), "--check"]) == 0
    said = capsys.readouterr()
    assert said.err.startswith("gradfx: warning: no ImageNet weights for vgg16") and "random weights" in said.err
    assert said.err.count("\n") == 1 and "ok, 1 step(s): tiny-dream" in said.out
    assert main(["chain", str(ok), "--check", "--weights", "imagenet"]) == 2  # the run refuses it too
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradfx: error: ") and "ImageNet weights for vgg16 not found" in err and "\n" not in err
    nothing = write(tmp_path / "fv.toml", "input = 'in.png'\n[[step]]\neffect = 'feature-vis'\n")
    assert main(["chain", str(nothing), "--check"]) == 2  # an input to a step that makes its image from nothing
    err = capsys.readouterr().err.strip()
    assert "makes its image from nothing and takes no input image" in err and "\n" not in err


def test_a_snapshots_path_that_cannot_be_a_folder_fails_before_compute(reg, tmp_path, capsys, monkeypatch):
    src = png(tmp_path / "in.png")
    recipe = write(tmp_path / "r.toml", "[[step]]\neffect = 'tiny-dream'\n")
    (tmp_path / "taken").write_text("a file, not a folder")
    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed before checking --snapshots"))
    assert main(["chain", str(recipe), str(src), "-o", str(tmp_path / "o.png"), "-q",
                 "--snapshots", str(tmp_path / "taken")]) == 2  # was a FileExistsError traceback after the run
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradfx: error: snapshots folder") and "choose another folder" in err and "\n" not in err


def test_a_recipe_path_that_is_a_folder_or_binary_says_so(tmp_path):
    png(tmp_path / "photo.png")
    for path, fragment in ((tmp_path, "is a folder; name a .toml file"),  # was "[Errno 21] Is a directory"
                           (tmp_path / "photo.png", "is not a text file")):  # was the UTF-8 codec's message
        with pytest.raises(RecipeError, match=fragment):
            load_recipe(path)


def test_a_recipe_weights_file_resolves_against_the_recipe_folder(reg, tmp_path, monkeypatch):
    from gradfx.engine.running import recipes

    (tmp_path / "a").mkdir()
    png(tmp_path / "a" / "in.png")
    seen = {}

    class Stop(Exception):
        pass

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(recipes, "plan", capture)
    monkeypatch.chdir(tmp_path)  # not the recipe's folder: the path used to resolve against this one
    recipe = load_recipe(write(tmp_path / "a" / "r.toml", """
        input = "in.png"
        weights = "mine.weights.h5"
        [[step]]
        effect = "tiny-dream"
    """))
    assert recipe.resolved_weights() == str(tmp_path / "a" / "mine.weights.h5")
    (tmp_path / "b").mkdir()
    moved = load_recipe(save_recipe(recipe, tmp_path / "b" / "r.toml"))
    assert moved.weights == str(Path("..") / "a" / "mine.weights.h5")
    assert Path(moved.resolved_weights()).resolve() == tmp_path / "a" / "mine.weights.h5"
    for keyword in ("Random", "imagenett"):  # a misspelt keyword stays one, for the 'did you mean' error
        text = f"weights = '{keyword}'\n[[step]]\neffect = 'tiny-dream'\n"
        assert loads_recipe(text, base_dir=tmp_path).resolved_weights() == keyword
    with pytest.raises(Stop):
        run_recipe(recipe)
    assert seen["weights"] == str(tmp_path / "a" / "mine.weights.h5")


def test_chain_report_never_replaces_the_recipe(reg, tmp_path, capsys):
    src = png(tmp_path / "in.png")
    recipe = write(tmp_path / "r.toml", "[[step]]\neffect = 'tiny-dream'\n")
    before = recipe.read_text()
    assert main(["chain", str(recipe), str(src), "-o", str(tmp_path / "o.png"), "-q", "--overwrite",
                 "--report", str(recipe)]) == 2  # the recipe was replaced by the JSON report
    err = capsys.readouterr().err.strip()
    assert "that is the recipe" in err and "\n" not in err, err
    assert recipe.read_text() == before and not (tmp_path / "o.png").exists()


def test_an_error_while_a_step_runs_names_the_step(reg, tmp_path):
    src = png(tmp_path / "in.png")
    (tmp_path / "notes.png").write_text("not an image")  # exists, so validation passes; loading fails
    with pytest.raises(ImageError) as err:
        run_chain([("tint", {"overlay": str(src)}), ("tint", {"overlay": str(tmp_path / "notes.png")})], src)
    assert str(err.value).startswith("step 2 (tint): ") and "not an image" in str(err.value)  # it named no step
    assert str(err.value).startswith("step 2 (tint): parameter 'overlay': "), str(err.value)  # nor the parameter


def test_chain_check_fails_on_a_missing_recipe_input(reg, tmp_path, capsys):
    recipe = write(tmp_path / "r.toml", "input = 'gone.png'\n[[step]]\neffect = 'tiny-dream'\n")
    assert main(["chain", str(recipe), "--check"]) == 2  # --check used to say ok; the run then failed
    err = capsys.readouterr().err.strip()
    assert "input image 'gone.png'" in err and "relative to the recipe's folder" in err and "\n" not in err


def test_save_and_load_round_trip_and_saving_elsewhere_keeps_image_paths_working(reg, tmp_path):
    png(tmp_path / "a" / "over.png")
    recipe = loads_recipe(textwrap.dedent("""
        name = "demo"
        input = "in.png"
        seed = 3
        model = "vgg16"
        [[step]]
        effect = "tint"
        overlay = "over.png"
        [[step]]
        effect = "tiny-dream"
        model = "vgg19"
        steps = 4
    """), base_dir=tmp_path / "a")
    same = save_recipe(recipe, tmp_path / "a" / "copy.toml")
    loaded = load_recipe(same)
    assert loaded.to_dict() == recipe.to_dict()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    moved = load_recipe(save_recipe(recipe, tmp_path / "b" / "deeper" / "moved.toml"))
    assert moved.steps[0].params["overlay"] == str(Path("..") / ".." / "a" / "over.png")
    assert Path(moved.resolve(moved.steps[0].params["overlay"])).resolve() == (tmp_path / "a" / "over.png")
    assert moved.steps[1].model == "vgg19" and moved.steps[1].params == {"steps": 4} and moved.seed == 3
    validate_recipe(moved)  # the moved recipe still finds its overlay image


# ------------------------------------------------- every file path resolves like an image path in a recipe
ST_LIGHT = dict(style_layers="block1_conv1", content_layers="block1_conv2", size=32, steps=1)


def _path_recipe(folder: Path, init: str = "start.png", vector: str = "vec/v.npy") -> Path:
    png(folder / "style.png", kind=1)
    png(folder / "start.png", kind=2)
    (folder / "vec").mkdir(parents=True, exist_ok=True)
    np.save(folder / "vec" / "v.npy", np.linspace(-1, 1, 64))
    return write(folder / "paths.toml", f"""
        weights = "random"
        model = "vgg16"
        [[step]]
        effect = "feature-vis"
        objective = "direction(block1_conv2, '{vector}') - 0.1*tv"
        size = 32
        steps = 2
        [[step]]
        effect = "style-transfer"
        style = "style.png"
        init = "{init}"
        style_layers = "block1_conv1"
        content_layers = "block1_conv2"
        size = 32
        steps = 1
    """)


def test_init_and_direction_files_resolve_relative_to_the_recipe(registry, tmp_path, monkeypatch):
    recipe = _path_recipe(tmp_path / "r")
    monkeypatch.chdir(tmp_path)  # neither file is here
    (fv, fv_params, _), (st, st_params, _) = validate_recipe(load_recipe(recipe))
    assert st_params["init"] == str(tmp_path / "r" / "start.png")
    assert fv_params["objective"].text == f"direction(block1_conv2, '{tmp_path / 'r' / 'vec' / 'v.npy'}') - 0.1*tv"
    result = run_recipe(recipe)  # both steps run from the other folder
    assert result.report["steps_run"] == 2
    start = np.asarray(PILImage.open(tmp_path / "r" / "start.png").convert("RGB"), np.float32) / 255
    assert np.abs(result.image - start).mean() < 0.05  # one Adam step from init, not from the first step's image


@pytest.mark.parametrize(("init", "vector", "fragment"), [
    ("nowhere.png", "vec/v.npy", "parameter 'init': 'nowhere.png' is not one of content, noise, style, fast, and file"),
    ("start.png", "vec/none.npy", "parameter 'objective': file"),
])
def test_a_missing_init_or_direction_file_fails_before_any_compute(registry, tmp_path, monkeypatch, init, vector,
                                                                    fragment):
    monkeypatch.setattr(execute, "_run_step", lambda *a, **k: pytest.fail("computed before validating"))
    recipe = _path_recipe(tmp_path / "r", init=init, vector=vector)
    with pytest.raises(ParameterError) as err:
        run_recipe(recipe)
    message = str(err.value)
    assert "paths.toml: step" in message and fragment in message, message
    assert str(tmp_path / "r" / Path(init if "init" in fragment else vector)) in message


def test_saving_elsewhere_rewrites_init_and_direction_paths_and_keeps_keywords(registry, tmp_path):
    recipe = load_recipe(_path_recipe(tmp_path / "a"))
    (tmp_path / "b").mkdir()
    moved = load_recipe(save_recipe(recipe, tmp_path / "b" / "moved.toml"))
    assert moved.steps[1].params["init"] == str(Path("..") / "a" / "start.png")
    assert moved.steps[0].params["objective"] == f"direction(block1_conv2, '{Path('..') / 'a' / 'vec' / 'v.npy'}') - 0.1*tv"
    validate_recipe(moved)  # it still finds its files
    recipe.steps[1].params["init"] = "noise"
    again = load_recipe(save_recipe(recipe, tmp_path / "b" / "again.toml"))
    assert again.steps[1].params["init"] == "noise"


def test_the_tui_loads_init_and_direction_paths_against_the_recipe(registry, tmp_path):
    from gradfx.tui.chain_model import load_recipe as tui_load

    path = _path_recipe(tmp_path / "r")
    params = {name: [p for p in eff.schema if p.has_paths] for name, eff in registry.effects.items()}
    steps = tui_load(path, params).steps
    assert steps[1].values["init"] == str(tmp_path / "r" / "start.png")
    assert steps[1].values["style"] == str(tmp_path / "r" / "style.png")
    assert str(tmp_path / "r" / "vec" / "v.npy") in steps[0].values["objective"]


def test_objective_paths_are_requoted_and_bad_text_left_alone():
    from gradfx.plugins.feature_vis.objective_language import map_paths

    assert map_paths("direction(a, 'v.npy') + direction(b, \"w.npy\")", str.upper) == \
        "direction(a, 'V.NPY') + direction(b, 'W.NPY')"
    assert map_paths("direction(a, 'v.npy')", lambda p: "it's.npy") == "direction(a, \"it's.npy\")"
    assert map_paths("a:1 $ 'v.npy'", str.upper) == "a:1 $ 'v.npy'"  # does not tokenize: parsing reports it
    with pytest.raises(ParameterError, match="both kinds of quote"):
        map_paths("direction(a, 'v.npy')", lambda p: "it's \"x\".npy")
