"""The built-in style-transfer effect, on seeded random VGG16 weights and small generated images.

Untrained networks balance the losses differently from ImageNet ones (the content layer block5_conv2 of a
random net barely tells images apart), so the runs here pass explicit weights; the effect's defaults stay
the TensorFlow tutorial's. Distances are measured by an independent oracle: the extractor and
``gram_matrix`` straight from the engine, not the effect's own losses.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradfx.engine import ParameterError, run
from gradfx.engine.images import colour
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import save_image
from gradfx.plugins.style_transfer import StyleTransfer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEEP = "block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1"  # the tutorial's style layers
SHALLOW = "block1_conv1,block2_conv1,block3_conv1"  # receptive fields well inside a 32 px tile
#: the tutorial's layers, with weights that suit an untrained VGG16 at 64 px, and Adam (VGG16's own defaults,
#: L-BFGS and style-heavy weights, are tuned for trained weights: tests/plugins/test_quality_trained.py)
BASE = dict(style_layers=DEEP, content_layers="block5_conv2", content_weight=300.0, style_weight=1e-2,
            tv_weight=3.0, lr=0.05, steps=60, size=64, optimizer="adam")
#: shallow layers, for tiles of 32 px and cheap long runs
LIGHT = dict(style_layers=SHALLOW, content_layers="block2_conv2", content_weight=300.0, style_weight=1e-2,
             tv_weight=3.0, lr=0.05, steps=60, size=64, optimizer="adam")


@pytest.fixture(scope="module")
def reg(module_registry):
    return module_registry


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pattern = _root_conftest().pattern
    folder = tmp_path_factory.mktemp("style")
    out = {}
    for name, img in {
        "stripes": pattern(64, 64, "stripes"),
        "gradient": pattern(64, 64, "gradient"),
        "noise": pattern(64, 64, "noise", seed=3),
        "left": np.repeat((np.mgrid[0:64, 0:64][1] < 32).astype(np.float32)[..., None], 3, -1),
    }.items():
        out[name] = str(save_image(folder / f"{name}.png", img))
    out["content"] = pattern(64, 64, "blobs")
    return out


def _root_conftest():
    """tests/conftest.py as a module (module-scoped fixtures cannot use the function-scoped make_image)."""
    path = Path(__file__).parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_gradfx_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def style_run(reg, content, **params):
    return run("style-transfer", content, params=params, registry=reg, weights="random", model="vgg16", seed=0)


class Oracle:
    """Content and Gram distances, and the effect's total loss, measured on whole images."""

    def __init__(self, style_layers: str, content_layer: str) -> None:
        from gradfx.engine.models.extractor import get_extractor

        self.style_layers = style_layers.split(",")
        self.content_layer = content_layer
        self.ext = get_extractor("vgg16", [*self.style_layers, content_layer], "random", seed=0)

    def _f(self, img):
        return self.ext(np.asarray(img, np.float32)[None])

    def style(self, img, style) -> float:
        import tensorflow as tf

        from gradfx.engine.objectives import gram_matrix

        a, b = self._f(img), self._f(style)
        return float(np.mean([tf.reduce_mean((gram_matrix(a[k]) - gram_matrix(b[k])) ** 2)
                              for k in self.style_layers]))

    def content(self, img, content) -> float:
        a, b = self._f(img), self._f(content)
        return float(np.mean((a[self.content_layer].numpy() - b[self.content_layer].numpy()) ** 2))

    def total(self, img, content, style, p) -> float:
        tv = (np.abs(np.diff(img, axis=0)).sum() + np.abs(np.diff(img, axis=1)).sum()) * 512 / np.sqrt(
            img.shape[0] * img.shape[1])
        return (p["content_weight"] * self.content(img, content) + p["style_weight"] * self.style(img, style)
                + p["tv_weight"] * tv)


def load(path):
    return load_image(path).rgb


@pytest.fixture(scope="module")
def basic(reg, files):
    return style_run(reg, files["content"], style=files["stripes"], **BASE)


@pytest.fixture(scope="module")
def light(reg, files):
    return style_run(reg, files["content"], style=files["stripes"], **LIGHT)


# --------------------------------------------------------------------------------------------- properties
def test_style_distance_halves_while_content_stays_bounded(basic, files):
    o = Oracle(DEEP, "block5_conv2")
    content, style = files["content"], load(files["stripes"])
    style_ratio = o.style(basic.image, style) / o.style(content, style)
    content_ratio = o.content(basic.image, content) / o.content(style, content)
    assert style_ratio < 0.5  # measured ~0.21
    assert content_ratio < 0.5  # the result stays far nearer the content than the style image is (~0.22)
    assert basic.image.shape == (64, 64, 3) and basic.report["sizes"] == [[64, 64]]
    assert basic.report["losses"][-1] < 0.7 * basic.report["losses"][0]


def test_heavier_blend_weight_moves_toward_that_style(reg, files):
    o = Oracle(SHALLOW, "block2_conv2")
    a, b = load(files["stripes"]), load(files["gradient"])
    params = {**LIGHT, "steps": 40, "style": f"{files['stripes']},{files['gradient']}"}
    toward_a = style_run(reg, files["content"], style_blend="3,1", **params).image
    toward_b = style_run(reg, files["content"], style_blend="1,3", **params).image
    assert o.style(toward_a, a) < 0.8 * o.style(toward_b, a)
    assert o.style(toward_b, b) < 0.8 * o.style(toward_a, b)


def _chroma(img):
    return colour.rgb_to_yiq(img)[..., 1:]


def test_preserve_colors_luminance_keeps_content_chroma(reg, files, light):
    content = files["content"]
    kept = style_run(reg, content, style=files["stripes"], preserve_colors="luminance", **LIGHT)
    err = np.abs(_chroma(kept.image) - _chroma(content)).mean()
    free = np.abs(_chroma(light.image) - _chroma(content)).mean()
    assert err < 0.01  # only clipping to [0, 1] moves the chroma
    assert free > 3 * err  # without it, the style's colours come through
    assert np.abs(colour.luminance(kept.image) - colour.luminance(content)).mean() > 0.005  # the luminance changed


def test_histogram_matching_gives_the_style_the_content_colours(files):
    content, style = files["content"], load(files["noise"])
    matched = colour.match_color_histogram(style, content)
    px, pc = matched.reshape(-1, 3), content.reshape(-1, 3)
    assert np.abs(np.cov(style.reshape(-1, 3), rowvar=False) - np.cov(pc, rowvar=False)).max() > 0.03
    assert np.allclose(px.mean(0), pc.mean(0), atol=1e-3)
    assert np.allclose(np.cov(px, rowvar=False), np.cov(pc, rowvar=False), atol=1e-3)
    assert colour.match_luminance(np.array([0.0, 1.0]), np.array([0.4, 0.6])) == pytest.approx([0.4, 0.6])


def test_masked_style_changes_mostly_its_region(reg, files):
    content = files["content"]
    out = style_run(reg, content, style=files["stripes"], mask=files["left"], **LIGHT).image
    change = np.abs(out - content).mean(axis=(0, 2))
    inside, outside = change[:28].mean(), change[36:].mean()  # columns, away from the mask's edge
    assert inside > 3 * outside


def test_tiled_and_whole_image_runs_reach_comparable_losses(reg, files, light):
    o = Oracle(SHALLOW, "block2_conv2")
    content, style = files["content"], load(files["stripes"])
    tiled = style_run(reg, content, style=files["stripes"], tile=32, **LIGHT)
    start = o.total(content, content, style, LIGHT)
    whole_loss = o.total(light.image, content, style, LIGHT)
    tiled_loss = o.total(tiled.image, content, style, LIGHT)
    assert tiled_loss < 1.35 * whole_loss  # measured ~1.19 (tiles ask every 32 px tile to match the Grams)
    assert start - tiled_loss > 0.5 * (start - whole_loss)  # measured ~0.66
    # the tiled run's own (area-weighted) loss is on the whole-image scale too
    assert tiled.report["losses"][0] == pytest.approx(light.report["losses"][0], rel=0.25)


def test_lbfgs_reaches_adams_200_step_loss_in_fewer_evaluations(reg, files):
    # Adam at the tutorial's settings; a style-dominated balance, as ImageNet runs are
    params = {**LIGHT, "size": 32, "steps": 200, "content_weight": 30.0}
    del params["lr"]
    adam = style_run(reg, files["content"], style=files["stripes"], **params)
    lbfgs = style_run(reg, files["content"], style=files["stripes"], **{**params, "optimizer": "lbfgs"})
    target = adam.report["losses"][-1]
    reached = [i for i, loss in enumerate(lbfgs.report["losses"], 1) if loss <= target]
    assert reached and reached[0] < 200 * 0.75
    assert lbfgs.report["evaluations"] <= 200
    assert lbfgs.image.min() >= 0.0 and lbfgs.image.max() <= 1.0


def test_scales_tiles_masks_levels_snapshots_together(reg, files):
    # 75 px in tiles of at most 48: two tile shapes (38 and 37 px), which the solver traces with relaxed
    # shapes, so every loss term must work with dynamic shapes
    params = dict(LIGHT, steps=6, size=75, scales=2, tile=48, levels=4, snapshot_every=4, init="noise",
                  mask=files["left"], preserve_colors="histogram")
    a = style_run(reg, files["content"], style=files["stripes"], **params)
    assert a.report["sizes"] == [[38, 38], [75, 75]]
    assert a.report["steps"] == 12 and a.report["status"] == "done"
    assert np.allclose(a.image * 3, np.round(a.image * 3), atol=1e-5)  # 4 levels: 0, 1/3, 2/3, 1
    frames = a.extras["snapshots"]
    assert len(frames) == 3 and all(f.shape == (75, 75, 3) for f in frames)


def test_objective_follows_the_problems_tile_not_the_parameter(reg, files):
    """The engine retries an out-of-memory run with smaller tiles by replacing ``Problem.tile``; the loss
    terms must follow the stage's tiling (BindContext.tile), not the ``tile`` parameter."""
    import dataclasses

    class Retiled(StyleTransfer):
        def run(self, ctx, params):
            problem = dataclasses.replace(self.build(ctx, params), tile=32)
            return self.finish(ctx, params, ctx.solve(problem))

    out = run(Retiled(), files["content"], params={**LIGHT, "style": files["stripes"], "steps": 3, "size": 64},
              registry=reg, weights="random", model="vgg16", seed=0)
    assert out.report["status"] == "done" and len(out.report["losses"]) == 3


def test_bfloat16_runs_the_network_in_bfloat16_and_lands_near_float32(reg, files, light, monkeypatch):
    from gradfx.engine.models.extractor import Extractor

    seen = []
    call = Extractor.__call__
    monkeypatch.setattr(Extractor, "__call__", lambda self, x: seen.append(self.precision) or call(self, x))
    low = style_run(reg, files["content"], style=files["stripes"], **LIGHT, precision="bfloat16")
    assert set(seen) == {"bfloat16"}  # targets and every traced step: the solver's bfloat16 extractor
    assert low.report["params"]["precision"] == "bfloat16" and light.report["params"]["precision"] == "float32"
    o = Oracle(SHALLOW, "block2_conv2")  # float32 distances for both results
    content, style = files["content"], load(files["stripes"])
    s32, s16 = o.style(light.image, style), o.style(low.image, style)
    c32, c16 = o.content(light.image, content), o.content(low.image, content)
    assert s16 < 0.5 * o.style(content, style) and c16 < 0.5 * o.content(style, content)  # it optimised
    # the pixels take another path (mean difference ~0.2 on an untrained net), the distances do not:
    assert abs(s16 - s32) < 0.02 * s32 and abs(c16 - c32) < 0.02 * c32, (s16, s32, c16, c32)  # ~0.1%, ~0.4%


def test_bfloat16_with_lbfgs_is_refused_before_any_compute(reg, files):
    with pytest.raises(ParameterError) as info:
        style_run(reg, files["content"], style=files["stripes"], optimizer="lbfgs", precision="bfloat16")
    message = str(info.value)
    assert "'precision'" in message and "lbfgs" in message and "optimizer=adam" in message
    assert message.startswith("effect 'style-transfer': ") and "\n" not in message


@pytest.mark.parametrize("init", ["style", "file"])
def test_init_from_the_style_or_a_file(reg, files, init):
    start = files["gradient"] if init == "file" else files["stripes"]
    out = style_run(reg, files["content"], style=files["stripes"], size=64, steps=1,
                    init=start if init == "file" else "style").image
    # one Adam step of 0.02 from the starting image
    assert np.abs(out - load(start)).mean() < 0.05 < np.abs(out - files["content"]).mean()


# ----------------------------------------------------------------------------------------- parameter errors
@pytest.mark.parametrize(("params", "word"), [({"style_blend": "1,2"}, "style_blend"), ({"style_blend": "0"},
                         "sums to 0"), ({"mask": "{stripes},{left}"}, "mask"), ({"levels": 1}, "levels")])
def test_cross_parameter_mistakes_fail_in_prepare_without_a_model(reg, files, params, word):
    from gradfx.engine.running.plan import resolve_params

    params = {k: v.format(**files) if isinstance(v, str) else v for k, v in params.items()}
    with pytest.raises(ParameterError, match=word):  # they were found only in build, after TensorFlow loaded,
        resolve_params("style-transfer", {"style": files["stripes"], **params}, registry=reg)  # so --check missed them


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"style_blend": "1,2"}, ["style_blend", "2 weight", "1 style"]),
        ({"style_blend": "0"}, ["style_blend", "sums to 0"]),
        ({"style_layers": "block1_conv1,block9_conv1"}, ["style_layers", "block9_conv1", "vgg16"]),
        ({"content_layers": "block5_conv2:x"}, ["content_layers", "weight"]),
        ({"levels": 1}, ["levels", "2 to 256"]),
        ({"tile": 16}, ["tile", "32"]),
        ({"init": "nowhere.png"}, ["init", "content, noise, style"]),
        ({"style_weight": 0, "content_weight": 0, "tv_weight": 0}, ["style_weight"]),
        ({"preserve_colors": "lum"}, ["preserve_colors", "luminance"]),
        ({"style_scale": 0}, ["style_scale"]),
        ({"optimizer": "sgd"}, ["optimizer", "lbfgs"]),
    ],
)
def test_bad_parameters_name_the_parameter(reg, files, params, words):
    with pytest.raises(ParameterError) as info:
        style_run(reg, files["content"], style=files["stripes"], **{"size": 64, "steps": 1, **params})
    for word in words:
        assert word in str(info.value)


def test_one_mask_per_style(reg, files):
    with pytest.raises(ParameterError, match="mask"):
        style_run(reg, files["content"], style=files["stripes"], mask=f"{files['left']},{files['left']}",
                  size=64, steps=1)


def test_tile_that_would_cut_below_the_minimum_runs_as_fewer_larger_tiles(reg, files):
    # 40 px tiles would cut a 48 px side into 24 px pieces, below VGG's 32 px: the engine uses one span
    out = style_run(reg, files["content"], style=files["stripes"], size=48, steps=1, tile=40)
    assert max(out.image.shape[:2]) == 48 and out.report["steps"] == 1


def test_module_imports_without_tensorflow():
    code = "import sys, gradfx.plugins.style_transfer; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
