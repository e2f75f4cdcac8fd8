"""What plugin authors and Python callers meet (issue 27, items 12-15): images held in memory wherever an image
goes, one convention for parameters and the names reserved for the engine, build errors named, progress per
chain step, and Result's 8-bit views and its save that never replaces a file unless asked."""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pytest
from helpers import TinyDream, TinyPlugin
from PIL import Image as PILImage

from gradfx.engine import (
    Image,
    ImageError,
    Images,
    Int,
    OutputError,
    ParameterError,
    RecipeError,
    run,
    run_chain,
)
from gradfx.engine.params import RESERVED
from gradfx.engine.running.result import Result

ENGINE = {"model": "vgg16", "weights": "random", "seed": 3}


class Pictures(TinyDream):
    """A tiny dream that reads image parameters: ``guide`` (one), ``extra`` (a list), and reports their
    means, so a test sees exactly which pixels the effect got."""

    name = "pictures"
    summary = "reads image parameters"
    params = (*TinyDream.params, Image("guide", "an image"), Images("extra", "images"))

    def finish(self, ctx, params, solution):
        from gradfx.engine import Output

        means = {"guide": None if params["guide"] is None else float(ctx.image(params["guide"]).rgb.mean()),
                 "extra": [float(ctx.image(v).rgb.mean()) for v in params["extra"] or ()]}
        return Output(solution.image, report={"means": means})


@pytest.fixture
def reg(registry):
    registry.add_plugin(TinyPlugin(TinyDream(), Pictures()), "tiny")
    return registry


@pytest.fixture
def photo(tmp_path, make_image):
    return _png(tmp_path / "photo.png", make_image(40, 48))


def _png(path, rgb):
    PILImage.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return path


# --- 12: images held in memory ---------------------------------------------------------------------------------
def test_an_array_a_pil_image_and_a_file_are_the_same_image_parameter(reg, photo, tmp_path, make_image):
    pixels = (make_image(32, 36, "stripes") * 255).round().astype(np.uint8)
    file = tmp_path / "guide.png"
    PILImage.fromarray(pixels).save(file)
    runs = [run("pictures", photo, params={"steps": 1, "guide": guide, "extra": [guide, str(file)]}, **ENGINE)
            for guide in (pixels, PILImage.fromarray(pixels), str(file), file)]
    means = [r.report["means"] for r in runs]
    assert all(m == means[0] for m in means) and means[0]["guide"] == pytest.approx(pixels.mean() / 255, abs=1e-6)
    recorded = runs[0].report["params"]
    json.dumps(runs[0].report)  # reports stay JSON
    assert recorded["guide"].startswith("<array 36x32 #") and recorded["extra"][1] == str(file)
    assert runs[1].report["params"]["guide"].startswith("<PIL image 36x32 #")
    assert recorded["guide"].split("#")[1] == recorded["extra"][0].split("#")[1]  # the same pixels, alike
    other = run("pictures", photo, params={"steps": 1, "guide": 255 - pixels}, **ENGINE)
    assert other.report["params"]["guide"] != recorded["guide"]  # other pixels, recorded otherwise


@pytest.mark.parametrize(("value", "kind", "fragment"), [
    (np.zeros((5,), np.float32), ImageError, "unsupported array shape (5,)"),
    (np.full((8, 8, 3), np.nan, np.float32), ImageError, "NaN"),
    (np.random.default_rng(0).random((300, 300, 3)), None, None),  # a valid, large array: no error at all
    (42, ParameterError, "42 is not an image; pass a path, a NumPy array"),
    ([[0.5] * 300] * 300, ParameterError, "is not an image"),
])
def test_a_bad_image_value_is_one_short_line_naming_the_parameter(reg, photo, value, kind, fragment):
    if kind is None:
        run("pictures", photo, params={"steps": 1, "guide": value}, **ENGINE)
        return
    with pytest.raises(kind) as err:
        run("pictures", photo, params={"steps": 1, "guide": value}, **ENGINE)
    message = str(err.value)
    assert message.startswith("effect 'pictures': parameter 'guide': ") and fragment in message, message
    assert "\n" not in message and len(message) < 200  # never the pixels (an array printed 1,890 characters)


def test_files_are_still_checked_and_protected_beside_images_in_memory(reg, photo, tmp_path, make_image):
    from gradfx.engine.running.plan import draft

    file = _png(tmp_path / "extra.png", make_image(32, 32))
    plan = draft([("pictures", {"extra": [make_image(32, 32), str(file)]})], photo, **ENGINE, chain=False)
    assert plan.files == (str(file),)  # outputs may not go over it; the array names no file
    with pytest.raises(ParameterError, match="image .*missing.png' does not exist"):
        draft([("pictures", {"extra": [make_image(32, 32), str(tmp_path / "missing.png")]})], photo, **ENGINE,
              chain=False)


def test_style_transfer_takes_its_style_init_and_masks_in_memory(registry, make_image):
    content, style = make_image(48, 48), make_image(40, 40, "stripes")
    params = {"steps": 2, "size": 48, "style_layers": "block1_conv1", "content_layers": "block2_conv2"}
    by_array = run("style-transfer", content, params={**params, "style": style, "init": style,
                                                     "mask": [PILImage.fromarray(np.full((48, 48), 255, np.uint8))]},
                   **ENGINE)
    assert by_array.report["params"]["init"].startswith("<array 40x40 #")
    assert by_array.report["status"] == "done"


def test_a_checkpoint_keeps_images_in_memory_and_resumes_to_the_same_bytes(reg, photo, tmp_path, make_image):
    from gradfx.engine import CancelToken, resume_run

    guide = make_image(30, 30, "checker")
    params = {"steps": 4, "guide": guide, "optimizer": "adam"}
    full = run("pictures", photo, params=params, **ENGINE)
    token = CancelToken()
    part = run("pictures", photo, params=params, **ENGINE, cancel=token, checkpoint=tmp_path / "ck",
               checkpoint_every=1, progress=lambda ev: ev.step == 2 and token.cancel())
    assert part.partial
    recorded = json.loads((tmp_path / "ck" / "run.json").read_text())["params"]["guide"]
    assert recorded == full.report["params"]["guide"]  # run.json stays JSON
    resumed, _ = resume_run(tmp_path / "ck")
    assert np.array_equal(resumed.image, full.image) and resumed.report["means"] == full.report["means"]
    assert resumed.report["params"]["guide"] == recorded


def test_a_batch_tells_images_in_memory_apart_by_their_pixels(registry, make_image):
    from gradfx.engine.batch import make_job

    style = make_image(40, 40)

    def settings(image):
        return make_job("style-transfer", {"style": image, "steps": 1}, model="vgg16", weights="random").settings

    # the manifest's settings: a rerun with another style image must not take the done items for its own
    assert settings(style) == settings(style.copy()) != settings(1 - style)


def test_a_recipe_cannot_hold_an_image_in_memory(make_image):
    from gradfx.engine import Recipe, Step

    recipe = Recipe(steps=[Step("style-transfer", {"style": [make_image(8, 8)]})])
    with pytest.raises(RecipeError, match="parameter 'style' holds an image in memory"):
        recipe.to_dict()


# --- 13: one convention, reserved names ------------------------------------------------------------------------
def test_reserved_names_are_runs_own_arguments():
    names = [n for n, p in inspect.signature(run).parameters.items() if p.kind != p.VAR_KEYWORD]
    assert set(RESERVED) == set(names)


@pytest.mark.parametrize("reserved", ["seed", "model", "weights", "effect"])
def test_a_plugin_parameter_with_a_reserved_name_is_refused_in_one_line(registry, reserved):
    class Clash(TinyDream):
        name = "clash"
        params = (*TinyDream.params, Int(reserved, 1, "a name the engine has"))

    info = registry.add_plugin(TinyPlugin(Clash()), "clashing")
    assert not info.ok and "clash" not in registry.effects
    (error,) = info.errors
    assert f"plugin 'clashing': effect 'clash': parameter '{reserved}' is reserved" in error and "\n" not in error
    assert f"rename it, e.g. clash_{reserved}" in error


def test_keyword_parameters_still_work_but_warn_and_params_is_the_one_form(reg, photo):
    new = run("tiny-dream", photo, params={"steps": 2}, **ENGINE)
    with pytest.warns(DeprecationWarning, match=r"pass params=\{'steps': \.\.\.\}"):
        old = run("tiny-dream", photo, steps=2, **ENGINE)
    assert np.array_equal(new.image, old.image) and old.report["params"] == new.report["params"]
    with pytest.raises(ParameterError, match="'steps' is given twice"):
        run("tiny-dream", photo, params={"steps": 2}, steps=3, **ENGINE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the one form warns about nothing
        chained = run_chain([("tiny-dream", {"steps": 2})], photo, weights="random", seed=3)
    assert np.array_equal(chained.image, new.image)


def test_run_frames_takes_params_as_run_does(reg, make_image):
    from gradfx.engine import run_frames

    frames = [make_image(40, 40, seed=i) for i in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = list(run_frames("tiny-dream", frames, params={"steps": 2, "channel": 7}, **ENGINE))
    assert [r.report["params"]["channel"] for r in results] == [7, 7]


# --- 14: errors raised in build name the effect ----------------------------------------------------------------
def test_a_parameter_error_raised_in_build_names_the_effect(registry, make_image):
    class Picky(TinyDream):
        name = "picky"

        def build(self, ctx, params):
            raise ParameterError("parameter 'steps': too few for this image")

    registry.add_plugin(TinyPlugin(Picky()), "picky")
    with pytest.raises(ParameterError) as err:
        run("picky", make_image(40, 40), **ENGINE)
    assert str(err.value) == "effect 'picky': parameter 'steps': too few for this image"
    with pytest.raises(ParameterError, match=r"^step 1 \(picky\): parameter 'steps'"):
        run_chain([("picky", {})], make_image(40, 40), weights="random")


def test_style_transfer_refuses_nothing_to_match_before_tensorflow_loads(registry, make_image):
    from gradfx.engine.running.plan import draft

    with pytest.raises(ParameterError, match="'content_weight' and 'style_weight' are both 0"):
        draft([("style-transfer", {"style": [make_image(8, 8)], "content_weight": 0, "style_weight": 0})],
              make_image(40, 40), weights="random", chain=False)


def test_style_transfer_minimises_the_public_style_loss(registry, make_image, monkeypatch):
    from gradfx.engine.objectives import StyleLoss

    bound = []
    bind = StyleLoss._bind
    monkeypatch.setattr(StyleLoss, "_bind", lambda self, ctx: bound.append(self) or bind(self, ctx))
    run("style-transfer", make_image(40, 40), params={"style": make_image(32, 32), "steps": 1, "size": 40},
        **ENGINE)
    assert len(bound) == 1 and str(bound[0]).startswith("style(block1_conv1")


# --- 15: progress per chain step, Result's views and save ------------------------------------------------------
def test_progress_events_say_which_effect_and_chain_step(reg, photo):
    events = []
    run_chain([("tiny-dream", {"steps": 2}), ("pictures", {"steps": 1}), ("tiny-dream", {"steps": 1})], photo,
              weights="random", progress=events.append)
    assert [(e.effect, e.chain_index, e.chain_count) for e in events] == [
        ("tiny-dream", 0, 3), ("tiny-dream", 0, 3), ("pictures", 1, 3), ("tiny-dream", 2, 3)]
    single = []
    run("tiny-dream", photo, params={"steps": 1}, **ENGINE, progress=single.append)
    assert [(e.effect, e.chain_index, e.chain_count) for e in single] == [("tiny-dream", 0, 1)]


def test_to_uint8_and_to_pil_are_the_pixels_save_writes(tmp_path):
    rgb = np.random.default_rng(1).random((6, 7, 3)).astype(np.float32)
    alpha = np.linspace(0, 1, 42, dtype=np.float32).reshape(6, 7)
    for a in (None, alpha):
        result = Result(rgb, {}, a)
        (written,) = result.save(tmp_path / f"o{a is None}.png")
        saved = np.asarray(PILImage.open(written))
        assert result.to_uint8().dtype == np.uint8 and result.to_uint8().shape == (6, 7, 3)
        assert np.array_equal(result.to_uint8(alpha=a is not None), saved)
        assert np.array_equal(np.asarray(result.to_pil()), saved)
        assert result.to_pil().mode == ("RGB" if a is None else "RGBA")
    assert np.all(Result(rgb, {}).to_uint8(alpha=True)[..., 3] == 255)  # opaque where there was no alpha


def test_save_never_replaces_a_file_unless_asked_and_a_refusal_writes_nothing(tmp_path):
    frames = [np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.8)]
    result = Result(frames[-1], {}, extras={"sheet": frames[0], "frames": frames})
    out = tmp_path / "o.png"
    written = result.save(out)
    assert sorted(p.name for p in written) == ["0001.png", "0002.png", "o-frames.webp", "o-sheet.png", "o.png"]
    with pytest.raises(OutputError, match=r"o\.png: exists; pass overwrite=True to replace it"):
        Result(frames[0], {}).save(out)
    out.unlink()  # now only the extras are in the way
    extras = {p: p.read_bytes() for p in written if p != out}
    with pytest.raises(OutputError, match="o-sheet.png: exists"):
        result.save(out)
    assert not out.exists() and {p: p.read_bytes() for p in extras} == extras  # checked before any write
    assert len(Result(frames[0], {}, extras={"sheet": frames[-1]}).save(out, overwrite=True)) == 2
    assert np.asarray(PILImage.open(tmp_path / "o-sheet.png")).mean() > 150  # replaced by the 0.8 sheet


def test_image_parameter_values_name_no_pixels_when_formatted():
    from gradfx.engine.images.load import load_image

    p = Image("guide", "an image")
    loaded = load_image(np.zeros((4, 5, 3), np.float32))
    assert p.format(loaded).startswith("<array 5x4 #") and p.to_json(p.coerce("x.png")) == "x.png"
