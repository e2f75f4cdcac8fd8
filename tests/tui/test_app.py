"""Functional tests: drive the app with Textual's Pilot, run the tiny effect for real, assert on the messages
the app posted and on the files it wrote."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("textual")
tomllib = pytest.importorskip("tomllib")

from gradfx.engine.images.load import load_image  # noqa: E402
from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.screens import ErrorDialog, PathPrompt  # noqa: E402
from gradfx.tui.widgets import ChainView, ParamForm  # noqa: E402

SIZE = (80, 24)


def _app(recording_app, sample, **kw):
    return recording_app(image=sample, weights="random", device="cpu", **kw)


def _register(registry, name: str, *params) -> None:
    """Register a tiny-dream variant called ``name`` that takes ``params``."""
    from tiny_plugin import TinyDream

    from gradfx.engine import hookimpl

    variant = type("Variant", (TinyDream,), {"name": name, "params": params})

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(variant())

    registry.add_plugin(Plugin(), name)
    assert name in registry.effects, list(registry.failures())


async def _add(pilot, effect: str) -> None:
    """Add an effect from the browser with the keyboard (it has focus at start)."""
    app = pilot.app
    browser = app.query_one("#effects")
    browser.focus()
    names = [browser.get_option_at_index(i).id for i in range(browser.option_count)]
    browser.highlighted = names.index(effect)
    await pilot.press("enter")
    await pilot.pause()


async def _run(pilot, wait_for, *effects: str, focus: str | None = None, until=None) -> None:
    """Once the input has loaded: add ``effects``, focus the ``focus`` widget, press ctrl+r and wait ``until``
    (default: the run finished or failed)."""
    app = pilot.app
    await wait_for(pilot, lambda: app.loaded is not None)
    for effect in effects:
        await _add(pilot, effect)
    if focus:
        app.query_one(focus).focus()
    await pilot.press("ctrl+r")
    await wait_for(pilot, until or (lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed)))


async def test_run_and_save_end_to_end(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        await pilot.press("down", "enter")  # effects are sorted: tiny-broken, tiny-dream
        assert [s.effect for s in app.chain] == ["tiny-dream"]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
        assert not app.of(GradfxApp.RunFailed), app.of(GradfxApp.RunFailed)[0].error
        started = app.of(GradfxApp.RunStarted)[0]
        assert started.steps == [("tiny-dream", {}, None)]
        progress = app.of(GradfxApp.RunProgress)
        assert progress and progress[-1].event.step == 2 and progress[-1].event.steps == 2
        assert len(progress[-1].losses) == 2 and all(np.isfinite(progress[-1].losses))
        finished = app.of(GradfxApp.RunFinished)[0]
        assert not finished.cancelled and not finished.result.partial
        assert finished.result.image.shape == (40, 48, 3)
        assert "done" in str(app.query_one("#status").render())

        await pilot.press("ctrl+s")
        assert isinstance(app.screen, PathPrompt)
        assert app.screen.query_one("#path").value == "sample-tiny-dream.png"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.of(GradfxApp.OutputSaved))
        saved = app.of(GradfxApp.OutputSaved)[0].paths[0]
    assert Path(saved).resolve() == Path("sample-tiny-dream.png").resolve()
    out = load_image(saved)
    assert out.size == (48, 40)
    assert np.abs(out.rgb - finished.result.image).max() <= 1 / 255 + 1e-6  # what ran is what was written
    assert not list(Path(".").glob("*.tmp*"))  # atomic: no temporary file left behind


async def test_cancel_keeps_the_image_so_far(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        await _add(pilot, "tiny-dream")
        app.chain[0].values["steps"] = "50"
        app.gate = threading.Event()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunProgress))  # the engine now waits at step 1
        await pilot.press("escape")
        app.gate.set()
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
        finished = app.of(GradfxApp.RunFinished)[0]
        assert finished.cancelled and finished.result.partial, finished.result.report["reports"][0]["steps"]
        assert finished.result.report["reports"][0]["steps"] < 50
        assert "cancelled" in str(app.query_one("#status").render())
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: app.of(GradfxApp.OutputSaved))
    assert load_image("sample-tiny-dream.png").size == (48, 40)


async def test_failed_run_opens_an_error_dialog_and_the_app_keeps_going(tiny_registry, sample, recording_app,
                                                                        wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        await _add(pilot, "tiny-broken")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFailed))
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog))
        assert "broken on purpose" in str(app.of(GradfxApp.RunFailed)[0].error)
        assert "broken on purpose" in str(app.screen.query_one("#error-message").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorDialog)
        assert not app.running
        assert "failed" in str(app.query_one("#status").render())
        # the app still works: fix the chain (a new run is covered by the other tests)
        await pilot.press("tab")  # to the chain
        await pilot.press("x")
        await _add(pilot, "tiny-dream")
        assert [s.effect for s in app.chain] == ["tiny-dream"]


async def test_inline_validation_blocks_the_run(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        app.query_one("#param-steps").focus()
        await pilot.press("ctrl+a", "ctrl+k", *"abc")
        error = app.query_one("#error-steps")
        assert error.display and "expected an integer from 1 to 50" in str(error.render())
        assert "✗" in str(app.query_one(ChainView).get_option_at_index(0).prompt)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not app.of(GradfxApp.RunStarted)
        await pilot.press("ctrl+a", "ctrl+k", "3")
        assert not error.display
        assert app.chain[0].params(tiny_registry.effects["tiny-dream"]) == {"steps": 3}
        # a choice and a bool from the same schema
        assert app.query_one("#param-layer").value == "block1_conv2"
        app.query_one("#param-invert").focus()
        await pilot.press("space")
        assert app.chain[0].values["invert"] is True


async def test_chain_editing_with_keys(tiny_registry, sample, recording_app):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        await _add(pilot, "tiny-broken")
        app.query_one(ChainView).focus()
        await pilot.pause()
        assert app.current == 1
        await pilot.press("shift+up")  # move tiny-broken up
        assert [s.effect for s in app.chain] == ["tiny-broken", "tiny-dream"] and app.current == 0
        await pilot.press("down", "d")  # duplicate tiny-dream
        assert [s.effect for s in app.chain] == ["tiny-broken", "tiny-dream", "tiny-dream"]
        assert app.chain[1] is not app.chain[2]
        await pilot.press("up", "up", "x")
        assert [s.effect for s in app.chain] == ["tiny-dream", "tiny-dream"]
        await pilot.pause()
        assert app.query_one(ParamForm).border_title == "Step 1: tiny-dream"


async def test_recipe_round_trip(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        app.chain[0].values.update(steps="4", guide=str(Path("sample.png").resolve()))
        await _add(pilot, "tiny-dream")
        await pilot.press("f3")
        assert isinstance(app.screen, PathPrompt)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.of(GradfxApp.RecipeSaved))
        saved = app.of(GradfxApp.RecipeSaved)[0].path
        data = tomllib.loads(Path(saved).read_text())
        assert data["step"] == [{"effect": "tiny-dream", "steps": 4, "guide": "sample.png"},
                                {"effect": "tiny-dream"}]  # image paths relative to the recipe
        assert data["input"] == "sample.png" and data["weights"] == "random"
        assert data["seed"] == 0  # the seed in use, even the default: it was left out
        assert Path(saved).read_text().count("[[step]]") == 2  # the tables docs/tui.md describes
        app.action_clear_chain()
        app._apply_recipe(Path(saved))
        await pilot.pause()
        loaded = app.of(GradfxApp.RecipeLoaded)[0].steps
        assert [s.effect for s in loaded] == ["tiny-dream", "tiny-dream"]
        assert loaded[0].values["steps"] == "4"
        assert Path(loaded[0].values["guide"]) == Path("sample.png").resolve()
        # the form is rebuilt for the loaded chain before the app closes: closing during the rebuild failed
        # one run in five (NoMatches from a Select being mounted as its screen went)
        form = app.query_one(ParamForm)
        await wait_for(pilot, lambda: form.step is app.chain[0] and not form._rebuilding.locked()
                       and bool(form.query("#param-steps")))


async def test_broken_plugin_notice_and_dialog(tiny_registry, sample, recording_app):
    class Bad:
        from gradfx.engine import hookimpl

        @hookimpl
        def gradfx_register_effects(self, register):
            raise RuntimeError("cannot start")

    tiny_registry.add_plugin(Bad(), "bad-plugin")
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("bad-plugin" in n for n in notes)
        app.action_plugin_failures()
        await pilot.pause()
        assert isinstance(app.screen, ErrorDialog)
        assert "cannot start" in str(app.screen.query_one("#error-message").render())


async def test_command_palette_runs_actions(tiny_registry, sample, recording_app):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"add tiny-dream")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert [s.effect for s in app.chain] == ["tiny-dream"]
        await pilot.press("ctrl+p")
        await pilot.press(*"weights: imagenet")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.weights == "imagenet"
        assert "weights imagenet" in str(app.query_one("#topbar").render())


async def test_progress_and_preview_are_throttled(tiny_registry, sample, recording_app, wait_for):
    from gradfx.tui import app_run

    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        await _add(pilot, "tiny-dream")
        app.chain[0].values["steps"] = "40"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
        report = app.of(GradfxApp.RunFinished)[0].result.report["reports"][0]
        seconds = sum(report["step_seconds"])
        progress, previews = app.of(GradfxApp.RunProgress), app.of(GradfxApp.PreviewReady)
        assert progress[-1].event.step == 40 and len(progress[-1].losses) == 40
        assert len(progress) <= seconds / app_run.PROGRESS_INTERVAL + 3
        assert len(previews) <= seconds / app_run.PREVIEW_INTERVAL + 2
        for message in previews:
            assert message.image.dtype == np.uint8 and message.image.shape == (40, 48, 3)
        assert all(m.event._preview is None for m in progress)  # the UI never touches the engine's tensors


async def test_step_model_is_editable_and_kept(tiny_registry, sample, recording_app):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        field = app.query_one("#step-model")
        assert field.value == "" and "vgg16" in field.placeholder
        field.focus()
        await pilot.press(*"vgg19")
        assert app.chain[0].model == "vgg19"
        assert "(vgg19)" in str(app.query_one(ChainView).get_option_at_index(0).prompt)
        await pilot.press("ctrl+a", "ctrl+k")
        assert app.chain[0].model is None


async def test_forms_show_the_defaults_of_the_model_the_default_follows_to(tiny_registry, sample, recording_app,
                                                                           wait_for, monkeypatch):
    # offline with the trained VGG16 installed, an effect whose default model has no trained weights runs on
    # VGG16 with VGG16's defaults: the about text, the form and the chain say so before the run (the probe)
    from gradfx.engine import Float
    from gradfx.engine.models import choice as plans

    _register(tiny_registry, "far-dream", Float("lr", 0.02, "step size").per_model("tiny", vgg19=(0.5, "tuned")))
    asked = []

    def follows(eff, registry, weights="auto"):
        asked.append(weights)
        return "vgg19" if eff.name == "far-dream" and weights == "auto" else None

    monkeypatch.setattr(plans, "followed_model", follows)
    app = recording_app(image=sample, weights="auto", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.follows == {"far-dream": "vgg19"})
        await _add(pilot, "far-dream")
        await wait_for(pilot, lambda: app.query("#param-lr"))
        form = app.query_one(ParamForm)
        assert app.query_one("#param-lr").value == "0.5" and app.chain[0].params(form.effect) == {}
        assert "(vgg19)" in str(app.query_one(ChainView).get_option_at_index(0).prompt)
        assert "vgg19" in app.query_one("#step-model").placeholder and app.chain[0].model is None
        # other weights: nothing follows, and the open form goes back to the effect's own defaults
        app.set_weights("random")
        await wait_for(pilot, lambda: app.follows == {} and app.query_one("#param-lr").value == "0.02")
        assert asked[-1] == "random" and "(vgg19)" not in str(app.query_one(ChainView).get_option_at_index(0).prompt)


async def test_seed_prompt_checks_its_value(tiny_registry, sample, recording_app):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        app.action_seed()
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"-3", "enter")
        assert "not a whole number" in str(app.screen.query_one("#prompt-hint").render())
        await pilot.press("ctrl+a", "ctrl+k", *str(2**32), "enter")  # the engine's seeding stops at 2**32 - 1
        assert "from 0 to 4294967295" in str(app.screen.query_one("#prompt-hint").render())
        await pilot.press("ctrl+a", "ctrl+k", *"42", "enter")
        await pilot.pause()
        assert app.seed == 42 and "seed 42" in str(app.query_one("#topbar").render())


async def test_main_keys_wait_while_a_dialog_is_open(tiny_registry, sample, recording_app):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        await pilot.press("f1")
        await pilot.pause()
        await pilot.press("ctrl+r", "ctrl+o")
        await pilot.pause()
        assert not app.of(GradfxApp.RunStarted) and len(app.screen_stack) == 2


async def test_keyword_or_file_parameter_offers_the_file_picker(tiny_registry, sample, recording_app):
    # an ImageOr parameter (like style-transfer's init) takes a keyword or an image file: the form offers the
    # picker, which starts from the input image's folder while the value is a keyword, and the chosen file
    # becomes the value
    from gradfx.engine import ImageOr
    from gradfx.tui.screens import FilePicker

    init = ImageOr("init", "content", ("content", "noise"), "starting image")
    _register(tiny_registry, "tiny-starts", init)
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-starts")
        app.query_one("#browse-init").press()
        await pilot.pause()
        assert isinstance(app.screen, FilePicker) and app.screen.root == Path.cwd().resolve()
        app.screen.dismiss(Path("sample.png"))
        await pilot.pause()
        assert app.chain[0].text(init) == "sample.png"


async def test_help_screen_fits_a_narrow_terminal_and_shows_every_key(tiny_registry, sample, recording_app):
    from gradfx.tui.screens import HelpScreen

    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one("#keys")
        text = str(keys.render())
        assert "[ and ]" in text  # not swallowed as markup
        width = keys.content_size.width
        assert width and all(len(line) <= width for line in text.splitlines()), width  # no line wraps at 80x24


async def test_save_prompt_refuses_the_input_and_bad_names_in_place(tiny_registry, sample, recording_app, wait_for):
    # saving over the input used to ask "exists: enter again to replace it", then fail in a dialog that told
    # the user to "pass --overwrite" (a CLI flag); the prompt now says why and keeps the name for editing
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, wait_for, "tiny-dream")
        for name, why in (("sample.png", "an image the chain reads"), ("out.bogus", "unknown image extension"),
                          ("nowhere/out.png", "does not exist")):
            await pilot.press("ctrl+s")
            await pilot.press("ctrl+a", "ctrl+k", *name, "enter")
            await pilot.pause()
            assert isinstance(app.screen, PathPrompt), app.screen
            assert app.screen.query_one("#path").value == name
            assert why in str(app.screen.query_one("#prompt-hint").render())
            await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ErrorDialog) and not app.of(GradfxApp.OutputSaved)
    assert load_image("sample.png").size == (48, 40)


async def test_progress_bar_spans_the_whole_chain(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        await _add(pilot, "tiny-dream")
        await _add(pilot, "tiny-dream")
        app.gate = threading.Event()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunProgress))  # step 1 of 2 steps of chain step 1 of 2
        await pilot.pause()
        percentage = app.query_one("#bar").percentage
        app.gate.set()
        app.gate = None
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
    assert percentage == pytest.approx(0.25)  # not 0.5: the second chain step is still to come


async def test_chain_counts_only_values_that_differ_from_the_defaults(tiny_registry, sample, recording_app):
    # "N set" counted every field ever typed in: a value typed back to its default, or emptied, still counted
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        app.query_one("#param-steps").focus()
        await pilot.press("ctrl+a", "ctrl+k", "9")
        prompt = lambda: str(app.query_one(ChainView).get_option_at_index(0).prompt)  # noqa: E731
        assert "1 set" in prompt()
        await pilot.press("ctrl+a", "ctrl+k", "2")  # the default again
        assert "set" not in prompt()


async def test_run_status_shows_the_loss_in_the_three_column_layout(tiny_registry, sample, recording_app):
    from rich.console import Console
    from rich.text import Text

    from gradfx.engine.progress import ProgressEvent

    app = _app(recording_app, sample)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        event = ProgressEvent("step 1/2 deepdream · octave 1/1 (128x96)", 0, 1, 2, 2, 14.93, 1.0, total_step=2,
                              total_steps=2)
        app.query_one("#run").show_event(event, [14.0, 14.93])
        await pilot.pause()
        status = app.query_one("#status")
        text = str(status.render())
        assert "loss 14.93" in text
        lines = Text(text).wrap(Console(), status.content_size.width)
        assert status.content_size.height >= len(lines), (status.content_size, lines)  # the loss is not cut off


async def test_error_dialog_opens_its_details_with_d_and_drops_the_cli_advice(tiny_registry, sample, recording_app,
                                                                            wait_for):
    # the message told TUI users to "run with --debug for the traceback", which is under "details" here; and
    # enter (the key that opens a collapsible) closes the dialog, so the details took tab, tab, enter
    from textual.widgets import Collapsible

    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, wait_for, "tiny-broken", until=lambda: isinstance(app.screen, ErrorDialog))
        message = str(app.screen.query_one("#error-message").render())
        assert "broken on purpose" in message and "--debug" not in message
        assert app.screen.query_one(Collapsible).collapsed
        await pilot.press("d")
        await pilot.pause()
        assert not app.screen.query_one(Collapsible).collapsed
        assert "broken on purpose" in str(app.screen.query_one("#error-details").render())  # the traceback


async def test_a_failed_run_does_not_leave_a_live_preview(tiny_registry, sample, recording_app, wait_for,
                                                          monkeypatch):
    from gradfx.tui import app_run
    from gradfx.tui.widgets import Preview

    monkeypatch.setattr(app_run, "PREVIEW_INTERVAL", 0.0)  # a preview at every step
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        # step 2 fails after step 1 sent live previews
        await _run(pilot, wait_for, "tiny-dream", "tiny-broken", until=lambda: isinstance(app.screen, ErrorDialog))
        assert app.of(GradfxApp.PreviewReady)
        assert app.query_one(Preview).border_subtitle == "input 48×40"


async def test_saving_a_recipe_over_an_existing_file_asks_first(tiny_registry, sample, recording_app, wait_for):
    # f3 replaced an existing recipe.toml without a word, while saving an image asks for a second enter
    Path("recipe.toml").write_text("# mine\n")
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        await pilot.press("f3", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PathPrompt) and not app.of(GradfxApp.RecipeSaved)
        assert "exists" in str(app.screen.query_one("#prompt-hint").render())
        assert Path("recipe.toml").read_text() == "# mine\n"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.of(GradfxApp.RecipeSaved))
        await pilot.press("f3", "ctrl+a", "ctrl+k", *"other", "enter")  # a new file, .toml added: no question
        await wait_for(pilot, lambda: len(app.of(GradfxApp.RecipeSaved)) == 2)
    assert 'effect = "tiny-dream"' in Path("recipe.toml").read_text()
    assert app.of(GradfxApp.RecipeSaved)[1].path.name == "other.toml"


async def test_weights_file_picker_lists_every_loadable_weights_file(tiny_registry, sample, recording_app):
    # the engine loads .h5, .weights.h5 and .hdf5 files; the picker hid .hdf5 ones
    from gradfx.tui.screens import FilePicker

    files = [Path(name) for name in ("a.h5", "b.weights.h5", "c.hdf5", "d.keras")]
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        app.action_weights_file()
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)
        shown = list(app.screen.query_one("#tree").filter_paths(files))
    assert [p.name for p in shown] == ["a.h5", "b.weights.h5", "c.hdf5"]  # never whole .keras models


async def test_a_recipe_whose_input_is_missing_says_so(tiny_registry, tmp_path, monkeypatch, recording_app):
    # the missing input was skipped without a word; the run then only said the effect needs an input image
    monkeypatch.chdir(tmp_path)
    Path("r.toml").write_text('input = "gone.png"\n[[step]]\neffect = "tiny-dream"\n')
    app = recording_app(weights="random", device="cpu", recipe="r.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [s.effect for s in app.chain] == ["tiny-dream"]
        notes = [n.message for n in app._notifications]
        assert any("gone.png is not a file" in n for n in notes), notes
        await pilot.pause()
        assert app.query_one(ParamForm).border_title == "Step 1: tiny-dream"  # the loaded step, not "About ..."


async def test_f4_back_to_the_form_after_a_narrow_run_focuses_a_field(tiny_registry, sample, recording_app,
                                                                      wait_for):
    # the run hides the form on a narrow terminal and the focused field with it; f4 showed the form again with
    # nothing focused, so what was typed next went nowhere
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, wait_for, "tiny-dream", focus="#param-steps")
        await pilot.press("f4")
        await pilot.pause()
        assert app.focused is app.query_one("#param-steps")
        await pilot.press("ctrl+a", "ctrl+k", "5")
        assert app.chain[0].values["steps"] == "5"


async def test_path_fields_are_wide_enough_to_use(tiny_registry, sample, recording_app):
    # beside a long parameter name (style-transfer's content_weight) and the Browse… button, the path field was
    # 4 columns wide at 120x40 ("[styl]") and its placeholder was cut to "path": a path's name now goes above it
    from gradfx.engine import Float, Images

    _register(tiny_registry, "tiny-style", Images("style", "style image(s)", required=True),
              Float("content_weight", 1e4, "weight of the content loss", min=0.0),
              *(Float(f"w{i}", 1.0, "more fields: the form scrolls", min=0.0) for i in range(12)))
    for size, least in (((120, 40), 20), ((80, 24), 30)):
        app = _app(recording_app, sample)
        async with app.run_test(size=size) as pilot:
            await _add(pilot, "tiny-style")
            field = app.query_one("#param-style")
            browse = app.query_one("#browse-style")
            assert field.region.width >= least, (size, field.region)
            assert app.query_one(ParamForm).show_vertical_scrollbar
            assert len(field.placeholder) < field.content_size.width, (size, field.placeholder)  # not cut
            assert browse.region.width and browse.region.right <= app.query_one(ParamForm).region.right


async def test_a_typed_path_in_the_file_picker_passes_its_extension_filter(tiny_registry, sample, recording_app):
    # the weights picker hid style.png but took it typed in, and the run then failed on it
    from gradfx.tui.screens import FilePicker

    Path("w.weights.h5").write_bytes(b"")
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        app.action_weights_file()
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)
        app.screen.query_one("#path").focus()
        await pilot.press(*"sample.png", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker) and app.weights == "random"
        notes = [n.message for n in app._notifications]
        assert any("sample.png: not a .h5, .weights.h5 or .hdf5 file" in n for n in notes), notes
        await pilot.press("ctrl+a", "ctrl+k", *"w.weights.h5", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, FilePicker) and app.weights == "w.weights.h5"


async def test_up_on_the_first_step_and_down_on_the_last_stay_there(tiny_registry, sample, recording_app):
    # up on step 1 of the chain wrapped round to the last step (OptionList's default); the effect browser too
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        await _add(pilot, "tiny-broken")
        chain = app.query_one(ChainView)
        chain.focus()
        await pilot.pause()
        assert chain.highlighted == 1
        await pilot.press("up", "up")
        await pilot.pause()
        assert chain.highlighted == 0 and app.current == 0
        await pilot.press("down", "down")
        await pilot.pause()
        assert chain.highlighted == 1 and app.current == 1
        browser = app.query_one("#effects")
        browser.focus()
        browser.highlighted = 0
        await pilot.press("up")
        assert browser.highlighted == 0
        browser.highlighted = browser.option_count - 1
        await pilot.press("down")
        assert browser.highlighted == browser.option_count - 1


async def test_loss_sparkline_and_eta_are_the_current_chain_step_s(tiny_registry, sample, recording_app, wait_for):
    # the sparkline mixed every step's losses (deepdream ~1, style-transfer ~3e5: the first step's line was
    # flat), and the ETA, which covers only the current step, read "ETA 0:00" at the end of step 1 of 2
    from gradfx.engine.progress import ProgressEvent

    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, wait_for, "tiny-dream", "tiny-dream")  # two steps each
        assert len(app.of(GradfxApp.RunProgress)[-1].losses) == 2  # not 2 + 2
        assert len(app.query_one("#losses").data) == 2
        panel = app.query_one("#run")
        event = ProgressEvent("step 1/2 tiny-dream · octave 1/1 (48x40)", 0, 1, 2, 2, 1.0, 3.0, total_step=2,
                              total_steps=2)
        panel.show_event(event, [2.0, 1.0])
        assert "ETA 0:00 for step 1/2" in str(app.query_one("#status").render())
        assert panel.border_subtitle == "loss for step 1/2"


async def test_the_footer_keeps_the_main_keys_with_the_chain_focused(tiny_registry, sample, recording_app,
                                                                     wait_for):
    # at 80x24 the chain's four keys pushed ^s, ^o, f4 and f1 off the footer; d and the moves are in f1's list
    from textual.widgets._footer import FooterKey

    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _add(pilot, "tiny-dream")
        app.query_one(ChainView).focus()

        def shown() -> set:
            return {k.key for k in app.query(FooterKey) if k.region.width and k.region.right <= SIZE[0]}

        # the footer is recomposed after focus moves: wait for the chain's keys, then look at the rest
        await wait_for(pilot, lambda: "x" in shown(), timeout=30)
        assert {"x", "ctrl+r", "ctrl+s", "ctrl+o", "f4", "f1"} <= shown(), shown()
