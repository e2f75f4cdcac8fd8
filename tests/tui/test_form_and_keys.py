"""The parameter form, moving around and what the screen says: the points a TUI user tripped on (issue 16)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual import events  # noqa: E402

from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.app_run import FIX_FIRST  # noqa: E402
from gradfx.tui.screens import Confirm, ErrorDialog  # noqa: E402
from gradfx.tui.widgets import ChainView, EffectBrowser, ParamForm  # noqa: E402

SIZE = (80, 24)


def _app(recording_app, sample, **kw):
    return recording_app(image=sample, weights="random", device="cpu", **kw)


async def _step(pilot, wait_for, effect: str = "tiny-dream") -> None:
    """Once the input has loaded, add ``effect`` and wait for its form."""
    app = pilot.app
    await wait_for(pilot, lambda: app.loaded is not None)
    app.add_step(effect)
    await wait_for(pilot, lambda: app.query_one(ParamForm).index == len(app.chain) - 1
                   and bool(app.query(f"#param-{app.registry.effects[effect].schema.params[0].name}")))


def _variant(registry, name: str, **attrs) -> type:
    """Register a tiny-dream variant called ``name`` with class attributes ``attrs``."""
    from tiny_plugin import TinyDream

    from gradfx.engine import hookimpl

    variant = type("Variant", (TinyDream,), {"name": name, **attrs})

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(variant())

    registry.add_plugin(Plugin(), name)
    assert name in registry.effects, list(registry.failures())
    return variant


def _toasts(app) -> list:
    return list(app._notifications)


async def test_a_missing_image_is_flagged_as_you_type_and_ctrl_r_s_toast_goes_once_fixed(
        tiny_registry, sample, recording_app, wait_for):
    # a missing file showed up only at ctrl+r, as a toast that stayed after the path was fixed
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        app.query_one("#param-guide").focus()
        await pilot.press(*"nope.png")
        error = app.query_one("#error-guide")
        await wait_for(pilot, lambda: error.display)
        assert "'nope.png' does not exist" in str(error.render())
        assert "✗" in str(app.query_one(ChainView).get_option_at_index(0).prompt)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not app.of(GradfxApp.RunStarted) and any(n.title == FIX_FIRST for n in _toasts(app))
        assert app.focused is app.query_one("#param-guide")  # the field to fix
        await pilot.press("ctrl+a", "ctrl+k", *"sample.png")
        await wait_for(pilot, lambda: not error.display)
        assert not any(n.title == FIX_FIRST for n in _toasts(app))
        assert "✗" not in str(app.query_one(ChainView).get_option_at_index(0).prompt)


async def test_after_the_error_dialog_typing_replaces_the_field_s_text(tiny_registry, sample, recording_app,
                                                                       wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        field = app.query_one("#param-guide")
        field.focus()
        await pilot.press(*"old.png")
        app._error("The run failed", "old.png: not an image")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorDialog) and app.focused is field)
        await pilot.pause()
        await pilot.press(*"new.png")
        assert field.value == "new.png"  # was old.pngnew.png


async def test_panel_keys_escape_and_go_to_a_field_by_name(tiny_registry, sample, recording_app, wait_for):
    # from the form back to the chain took 16 shift+tabs
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        app.query_one("#param-steps").focus()
        await pilot.pause()
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.focused, ChainView))
        await pilot.press("1")
        assert isinstance(app.focused, EffectBrowser)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.focused is app.query_one("#param-steps"))
        await pilot.press("2")  # in a text field a digit is text: escape, then 2
        assert app.query_one("#param-steps").value.endswith("2")
        await pilot.press("backspace", "escape", "1", "2")
        await wait_for(pilot, lambda: isinstance(app.focused, ChainView))
        from gradfx.tui.app_palette import GradfxCommands

        titles = [title for title, _, _ in GradfxCommands._commands(type("P", (), {"app": app})())]
        assert {"Go to lr", "Go to guide", "Go to chain"} <= set(titles)
        app.focus_param("lr")
        await pilot.pause()
        assert app.focused is app.query_one("#param-lr")
        app.action_panel("run")  # alt+4 in a field (narrow): the form is hidden, so focus leaves it
        await pilot.pause()
        assert app.screen.has_class("-show-run") and app.focused is None
        await pilot.press("3")
        await wait_for(pilot, lambda: not app.screen.has_class("-show-run") and app.focused is not None
                       and app.focused.id == "param-steps")


async def test_a_newly_chosen_step_s_form_opens_at_its_top(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=(80, 14)) as pilot:
        await _step(pilot, wait_for)
        await _step(pilot, wait_for)
        form = app.query_one(ParamForm)
        await wait_for(pilot, lambda: form.max_scroll_y > 0)
        form.scroll_end(animate=False, immediate=True)
        await wait_for(pilot, lambda: form.scroll_y > 0)
        chain = app.query_one(ChainView)
        chain.focus()
        chain.highlighted = 0
        await wait_for(pilot, lambda: form.index == 0)
        await pilot.pause()
        assert form.scroll_y == 0


async def test_the_invalid_marker_stays_on_the_step_s_line(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        app.chain[0].values["steps"] = "0"
        app.query_one(ChainView).show(app.chain, app._effects(), 0)
        await pilot.pause()
        view = app.query_one(ChainView)
        assert [view.render_line(y).text.strip() for y in range(2)] == ["1. ✗ tiny-dream  1 set", ""]


async def test_a_long_value_shows_its_start_after_leaving_the_field(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        field = app.query_one("#param-guide")
        field.focus()
        await pilot.pause()
        field.value = "a/" * 40 + "sampl"  # long, as if typed (90 single key presses took 10 s), then typed on
        field.cursor_position = len(field.value)
        await pilot.press("e", ".", "p", "n", "g")
        assert field.value.endswith("sample.png") and field.scroll_x > 0  # scrolled to the cursor at its end
        app.query_one("#param-steps").focus()
        await pilot.pause()
        assert field.cursor_position == 0 and field.scroll_x == 0


async def test_typing_right_after_ctrl_u_is_kept_in_a_burst_of_keys(tiny_registry, sample, recording_app, wait_for):
    # Textual inserts typed characters at once but runs ctrl+u only after it bubbled to the app
    # (Textualize/textual#6605): keys arriving together lost what was typed after ctrl+u
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        field = app.query_one("#param-steps")
        field.focus()
        field.cursor_position = len(field.value)
        for key, char in (("ctrl+u", None), ("3", "3"), ("left", None), ("1", "1"), ("backspace", None),
                          ("4", "4")):
            field.post_message(events.Key(key, char))  # queued together, as a burst from the terminal
        await wait_for(pilot, lambda: field.value == "43", timeout=10)


async def test_ctrl_q_during_a_run_asks_first(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    app.gate = threading.Event()  # the engine waits at its first progress event
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunProgress))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, Confirm))
        assert app.running and not app.token.cancelled
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await pilot.pause()
        assert app.token.cancelled  # the engine stops after its current step
        app.gate.set()
    assert app.return_code in (0, None)


async def test_the_footer_has_f4_again_after_resizing_to_a_narrow_terminal(tiny_registry, sample, recording_app):
    from textual.widgets._footer import FooterKey

    app = _app(recording_app, sample)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        assert "f4" not in {k.key for k in app.query(FooterKey)}
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert "f4" in {k.key for k in app.query(FooterKey)}  # was missing until focus moved


async def test_adding_an_effect_that_ignores_its_input_after_other_steps_says_so(tiny_registry, sample,
                                                                                recording_app, wait_for):
    _variant(tiny_registry, "tiny-nothing", needs_input=False)
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for, "tiny-nothing")
        assert not [n for n in _toasts(app) if "ignores" in n.message]  # first: nothing to ignore
        await _step(pilot, wait_for, "tiny-dream")
        await _step(pilot, wait_for, "tiny-nothing")
        notes = [n.message for n in _toasts(app) if "ignores" in n.message]
        assert len(notes) == 1 and notes[0].startswith("tiny-nothing makes its image from nothing")


async def test_a_focused_dropdown_looks_focused(tiny_registry, sample, recording_app, wait_for):
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        select = app.query_one("#param-layer")
        current = select.query_one("SelectCurrent")
        before = current.styles.background
        select.focus()
        await pilot.pause()
        assert current.styles.background != before


async def test_at_120_columns_the_form_gets_the_room_and_at_200_summaries_are_whole(tiny_registry, sample,
                                                                                   recording_app, wait_for):
    wordy = _variant(tiny_registry, "tiny-wordy", summary="Neural style transfer (Gatys et al.): multi-style, "
                     "masks, colour preservation, tiles, L-BFGS")
    app = _app(recording_app, sample)
    async with app.run_test(size=(120, 40)) as pilot:
        await _step(pilot, wait_for)
        help_line = app.query_one("#param-steps").parent.parent.query_one(".param-help")
        assert help_line.size.width >= 40, help_line.size  # it wrapped at about 20 characters
        assert app.query_one("#middle").size.width > app.query_one("#left").size.width
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        await pilot.pause()
        browser = app.query_one(EffectBrowser)
        shown = " ".join(browser.render_line(y).text.strip() for y in range(browser.size.height))
        assert " ".join(wordy.summary.split()) in " ".join(shown.split()), shown


async def test_a_weights_error_gives_the_tui_s_advice_not_the_command_line_s(tiny_registry, sample, recording_app,
                                                                            wait_for):
    from gradfx.engine import modelspecs
    from gradfx.engine.errors import WeightsError
    from gradfx.engine.models import weights

    spec = modelspecs.BUILTIN_MODELS[0]
    message = f"ImageNet weights for {spec.name} not found: offline; {weights._imagenet_fix(spec, False)}"
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        app._error("The run failed", WeightsError(message))
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog))
        shown = app.screen.message
        assert "--weights" not in shown and "Weights: random" in shown and "ctrl+p" in shown, shown


def test_picked_and_shown_paths_are_normalised(tmp_path, monkeypatch):
    from gradfx.tui.paths import short_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    assert short_path(tmp_path / "x" / ".." / "style.png") == "style.png"
    assert short_path("/nowhere/x/../style.png") == "/nowhere/style.png"


async def test_a_path_typed_in_the_file_picker_is_normalised(tiny_registry, sample, recording_app):
    from gradfx.tui.screens import FilePicker

    Path("sub").mkdir()
    picked = []
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(FilePicker("Choose"), picked.append)
        await pilot.pause()
        app.screen.query_one("#path").focus()
        await pilot.press(*"sub/../sample.png", "enter")
        await pilot.pause()
    assert picked == [Path("sample.png")]


def _styled(registry) -> None:
    """``tiny-styled``: style-transfer's optimizer (L-BFGS by default on VGG16, Adam on its own VGG19) and its
    Adam-only learning rate."""
    from gradfx.engine import Choice, Float, Int

    _variant(registry, "tiny-styled", model="vgg19", params=(
        Choice("optimizer", "adam", ("adam", "lbfgs"), "adam or lbfgs").per_model("", vgg16=("lbfgs", "tuned")),
        Float("lr", 0.02, "Adam's learning rate", min=0.0, max=1.0).only_when(optimizer="adam"),
        Int("steps", 2, "optimisation steps", min=1, max=50)))


async def test_the_form_shows_only_the_parameters_that_apply(tiny_registry, sample, recording_app, wait_for):
    # issue 27: Adam's lr was shown for a style-transfer step that runs L-BFGS
    from gradfx.tui.app_palette import GradfxCommands

    _styled(tiny_registry)
    app = _app(recording_app, sample)

    def shown(name: str) -> bool:
        return bool(app.query_one(f"#row-{name}").display)

    def go_to() -> set[str]:
        return {t for t, _, _ in GradfxCommands._commands(type("P", (), {"app": app})()) if t.startswith("Go to ")}

    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for, "tiny-styled")
        step, eff = app.chain[0], app.registry.effects["tiny-styled"]
        assert shown("lr") and "Go to lr" in go_to()
        app.query_one("#param-lr").value = "0.5"
        app.query_one("#param-optimizer").value = "lbfgs"
        await wait_for(pilot, lambda: not shown("lr"))
        assert shown("steps") and step.params(eff) == {"optimizer": "lbfgs"} and "Go to lr" not in go_to()
        assert str(app.query_one(ChainView).get_option_at_index(0).prompt).endswith("  1 set")  # lr not counted
        app.query_one("#param-optimizer").value = "adam"  # back: lr with the value it had
        await wait_for(pilot, lambda: shown("lr"))
        assert app.query_one("#param-lr").value == "0.5" and step.params(eff) == {"lr": 0.5}

        # a model whose default optimizer is L-BFGS: the untouched optimizer field shows it, and lr goes
        await _step(pilot, wait_for, "tiny-styled")
        app.query_one("#step-model").focus()
        await pilot.press(*"vgg16")
        await wait_for(pilot, lambda: app.query_one("#param-optimizer").value == "lbfgs" and not shown("lr"))
        assert app.chain[1].values == {} and app.chain[1].params(eff) == {}  # shown, not set by the user
        await pilot.press("ctrl+a", "ctrl+k")
        await wait_for(pilot, lambda: app.query_one("#param-optimizer").value == "adam" and shown("lr"))
        assert app.chain[1].values == {}
        model = app.query_one("#step-model")
        model.value, model.value = "vgg16", "vgg161"  # a burst: the first defaults echo after the second model
        await wait_for(pilot, lambda: app.chain[1].model == "vgg161")
        await pilot.pause(0.3)
        assert app.chain[1].values == {} and app.query_one("#param-optimizer").value == "adam"

        # the effect's description lists every parameter, with when it applies
        form = app.query_one(ParamForm)
        await form.show_about(eff)
        assert "only with optimizer=adam" in str(form.query_one(".about").render())


async def test_a_chain_step_stays_on_one_line_at_80_columns(tiny_registry, sample, recording_app, wait_for):
    # issue 27: "2. style-transfer (vgg16)  1" / "set" in the chain panel
    _variant(tiny_registry, "style-transfer")
    _variant(tiny_registry, "tiny-dream-with-a-name-longer-than-the-panel")
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        for effect in ("tiny-dream", "style-transfer", "tiny-dream-with-a-name-longer-than-the-panel"):
            await _step(pilot, wait_for, effect)
        for step in app.chain:
            step.model, step.values["lr"] = "vgg19", "0.5"
        del app.chain[0].values["lr"]
        view = app.query_one(ChainView)
        view.show(app.chain, app._effects(), 0)
        await pilot.pause()
        lines = [view.render_line(y).text.strip() for y in range(4)]
        assert lines == ["1. tiny-dream (vgg19)",  # fits the panel's 26 columns: whole
                         "2. style-transfer  1 set",  # the model goes first (the form shows it)
                         "3. tiny-dream-with-a-name…", ""], lines
        assert "(vgg19)" in str(view.get_option_at_index(1).prompt)  # the option keeps the whole text


async def test_the_loss_sparkline_shows_the_shape_after_the_first_loss(tiny_registry, sample, recording_app):
    # issue 27: the first loss (the photograph's, orders of magnitude larger) flattened the rest to a line
    from textual.widgets import Sparkline

    from gradfx.engine.progress import ProgressEvent
    from gradfx.tui.widgets import RunPanel

    losses = [4e7, *(3000.0 - 20 * i for i in range(60))]
    app = _app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(RunPanel)
        panel.reset("")
        panel.show_event(ProgressEvent("scale 1/1 (48x40)", 0, 1, 61, 100, losses[-1], 3.0, total_step=61,
                                       total_steps=100), losses)
        await pilot.pause()
        drawn = list(app.query_one("#losses", Sparkline).data)
        assert drawn[1:] == losses[1:] and drawn[0] == max(drawn) < 4e7
        assert (max(drawn[1:]) - min(drawn[1:])) / (max(drawn) - min(drawn)) > 0.8


async def test_a_fall_back_is_said_when_the_run_starts_not_at_its_end(tiny_registry, sample, recording_app,
                                                                     wait_for, monkeypatch, tmp_path,
                                                                     no_trained_vgg16):
    # "no ImageNet weights" and "runs on vgg16" came as toasts at the end, over the result
    from gradfx.tui.app import GradfxApp

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # auto: random weights, with a warning
    app = recording_app(image=sample, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        await _step(pilot, wait_for)
        app.gate = threading.Event()  # the engine waits at its first step
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunProgress))
        said = [n for n in _toasts(app) if "no ImageNet weights for vgg16" in n.message]
        assert len(said) == 1 and said[0].title == "Before this run"
        app.gate.set()
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
        await pilot.pause()
        assert [n for n in _toasts(app) if "no ImageNet weights" in n.message] == said  # not again at the end
