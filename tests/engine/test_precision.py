"""The ``precision`` option: a bfloat16 backbone gives float32 features close to float32's, and a bfloat16
style-transfer-like solve reaches distances within tolerance of the float32 solve."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError
from gradfx.engine.models import extractor as models
from gradfx.engine.objectives import Objective, gram_matrix
from gradfx.engine.optimise.solver import Problem, Solver

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")


def _extractor():
    return models.get_extractor("vgg19", LAYERS, "random", seed=0)


def test_bfloat16_extractor_is_cached_and_returns_float32_close_to_float32(make_image):
    ext = _extractor()
    low = ext.with_precision("bfloat16")
    assert low is ext.with_precision("bfloat16") and low.precision == "bfloat16"
    assert low.with_precision("float32") is ext and ext.precision == "float32"
    x = tf.constant(make_image(48, 48)[None])
    a, b = ext(x), low(x)
    for name in LAYERS:
        assert b[name].dtype == tf.float32
        rel = float(tf.norm(a[name] - b[name]) / tf.norm(a[name]))
        assert rel < 0.05, (name, rel)
    with pytest.raises(ParameterError, match="precision"):
        ext.with_precision("float16")


def _style_problem(content: np.ndarray, style: np.ndarray, precision: str) -> Problem:
    ext = _extractor()  # targets from float32 features, so both runs aim at the same thing
    s_feats, c_feats = ext(style[None]), ext(content[None])
    grams = {n: gram_matrix(s_feats[n]) for n in LAYERS}

    def fn(f, ctx):
        style_d = tf.add_n([tf.reduce_mean(tf.square(gram_matrix(f[n]) - grams[n])) for n in LAYERS])
        content_d = tf.reduce_mean(tf.square(f["block3_conv1"] - c_feats["block3_conv1"]))
        return 1e-2 * style_d + content_d

    return Problem(objective=Objective(fn, "style+content", set(LAYERS)), init=content, steps=25,
                   optimizer="adam", lr=0.02, precision=precision)


def test_bfloat16_solve_matches_float32_within_tolerance(make_image):
    content, style = make_image(48, 48, "blobs"), make_image(48, 48, "stripes", seed=1)
    runs = {}
    for precision in ("float32", "bfloat16"):
        solver = Solver(_style_problem(content, style, precision), _extractor(), min_size=32)
        assert solver.extractor.precision == precision
        sol = solver.run()
        assert solver.traces == 1 and sol.status == "done"
        runs[precision] = sol
    f32, bf16 = runs["float32"].losses, runs["bfloat16"].losses
    assert f32[-1] < 0.5 * f32[0]  # it optimised
    assert abs(bf16[-1] - f32[-1]) <= 0.05 * f32[-1]


def test_unknown_precision_is_a_parameter_error():
    with pytest.raises(ParameterError, match="precision 'fp8'"):
        Problem(objective=Objective(lambda f, c: tf.constant(0.0), "zero"), size=(8, 8),
                precision="fp8").validate()


# ------------------------------------------------------------------------------ the effects' `precision`
EFFECTS = ("style-transfer", "deepdream", "feature-vis")


def test_one_list_of_precisions():
    # it was written out three times (params, solver, models); now every user imports the one in params
    from gradfx.engine import params
    extractor = models
    from gradfx.engine.optimise import solver

    assert solver.PRECISIONS is params.PRECISIONS and extractor.PRECISIONS is params.PRECISIONS


@pytest.mark.parametrize("effect", EFFECTS)
def test_show_lists_precision(effect, registry, capsys):
    import json

    from gradfx.tui.cli import main

    assert main(["show", effect, "--json"]) == 0
    shown = {p["name"]: p for p in json.loads(capsys.readouterr().out)["params"]}
    assert shown["precision"]["default"] == "float32"
    assert shown["precision"]["allowed"] == "one of float32, bfloat16"


@pytest.fixture
def spy(monkeypatch):
    """The precision of every extractor call."""
    seen: list[str] = []
    call = models.Extractor.__call__
    monkeypatch.setattr(models.Extractor, "__call__", lambda self, x: seen.append(self.precision) or call(self, x))
    return seen


@pytest.mark.parametrize(("effect", "params"), [
    ("deepdream", {"layers": "block2_conv1:1", "octaves": 1, "steps": 2, "max_loss": 0}),
    ("feature-vis", {"objective": "block2_conv1:3", "size": 32, "steps": 2}),
])
def test_deepdream_and_feature_vis_pass_precision_to_the_engine(registry, make_image, spy, effect, params):
    from gradfx.engine import run

    image = make_image(40, 40) if effect == "deepdream" else None
    result = run(effect, image, params={"precision": "bfloat16", **params}, model="vgg16", weights="random")
    assert result.report["params"]["precision"] == "bfloat16" and result.report["steps"] == 2
    assert "bfloat16" in spy and "float32" not in spy[-2:]  # the solve's own calls ran in bfloat16


def test_cli_runs_style_transfer_in_bfloat16(registry, tmp_path, make_image, spy):
    from gradfx.engine.images.save import save_image
    from gradfx.tui.cli import main

    content = save_image(tmp_path / "content.png", make_image(40, 40))
    style = save_image(tmp_path / "style.png", make_image(40, 40, "stripes"))
    out, rep = tmp_path / "out.png", tmp_path / "report.json"
    code = main(["run", "style-transfer", str(content), "-o", str(out), "-p", f"style={style}", "-p",
                 "precision=bfloat16", "-p", "steps=2", "-p", "size=40", "-p", "style_layers=block1_conv1",
                 "-p", "content_layers=block2_conv1", "-p", "optimizer=adam", "--model", "vgg16", "--weights",
                 "random", "-q",
                 "--report", str(rep)])
    assert code == 0 and out.is_file() and set(spy) == {"bfloat16"}
    import json

    assert json.loads(rep.read_text())["params"]["precision"] == "bfloat16"


def test_cli_refuses_bfloat16_lbfgs_in_one_line_without_tensorflow(tmp_path, make_image):
    import subprocess
    import sys

    from gradfx.engine.images.save import save_image

    content = save_image(tmp_path / "content.png", make_image(40, 40))
    code = ("import sys; from gradfx.tui.cli import main; "
            f"rc = main(['run', 'style-transfer', {str(content)!r}, '-o', 'x.png', '-p', 'style={content}', "
            "'-p', 'optimizer=lbfgs', '-p', 'precision=bfloat16']); print(rc, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["2", "False"], out
    assert out.stderr.count("\n") == 1 and "'precision'" in out.stderr and "lbfgs" in out.stderr


def test_recipes_and_the_tui_form_take_precision(registry, tmp_path, make_image):
    from gradfx.engine.images.save import save_image
    from gradfx.engine.running.recipes import loads_recipe, validate_recipe
    from gradfx.tui.chain_model import ChainStep

    save_image(tmp_path / "s.png", make_image(32, 32))
    # optimizer said: offline the step runs on the trained VGG16, whose default optimizer is L-BFGS
    text = '[[step]]\neffect = "style-transfer"\nstyle = "s.png"\nprecision = "bfloat16"\n'
    adam = text + 'optimizer = "adam"\n'
    (_, resolved, _), = validate_recipe(loads_recipe(adam, source="r.toml", base_dir=tmp_path))
    assert resolved["precision"] == "bfloat16"
    with pytest.raises(ParameterError, match=r"r.toml: step 1 \(style-transfer\): parameter "
                                                             r"'precision': bfloat16 does not work with"):
        validate_recipe(loads_recipe(text + 'optimizer = "lbfgs"\n', source="r.toml", base_dir=tmp_path))
    effect = registry.effect("style-transfer")
    assert ChainStep("style-transfer", {"precision": "bfloat16"}).params(effect) == {"precision": "bfloat16"}
    assert "precision" in ChainStep("style-transfer", {"precision": "fp16"}).errors(effect)
