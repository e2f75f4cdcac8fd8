"""The TUI with an effect that reads no backbone (fast-style, on seeded random networks): its form has no model
row, its description says what it runs, a run finishes with a progress event that carries the image."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.widgets import ParamForm  # noqa: E402


@pytest.fixture
def with_fast_style(tiny_registry):
    from gradfx.engine import hookimpl
    from gradfx.plugins.fast_style import EFFECTS

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            for effect in EFFECTS:
                register(effect)

    tiny_registry.add_plugin(Plugin(), "fast")
    assert "fast-style" in tiny_registry.effects, list(tiny_registry.failures())
    return tiny_registry


async def test_fast_style_runs_in_the_tui(with_fast_style, sample, recording_app, wait_for):
    app = recording_app(image=sample, weights="random", device="cpu")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        browser = app.query_one("#effects")
        browser.focus()
        names = [browser.get_option_at_index(i).id for i in range(browser.option_count)]
        browser.highlighted = names.index("fast-style")
        await pilot.pause()


        def about() -> str:  # the effect's description, while it is highlighted in the browser
            found = app.query_one(ParamForm).query(".about")
            return str(found.first().render()) if found else ""

        await wait_for(pilot, lambda: "model: none: it runs adain-vgg19-encoder, adain-decoder" in about())
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query("#param-style"))
        assert not app.query("#step-model")  # it reads no backbone: no model to choose
        app.chain[0].values["style"] = "sample.png"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.RunFinished) or app.of(GradfxApp.RunFailed))
        assert not app.of(GradfxApp.RunFailed), app.of(GradfxApp.RunFailed)[0].error
        finished = app.of(GradfxApp.RunFinished)[0]
        assert finished.result.image.shape == (40, 48, 3)
        assert finished.result.report["reports"][0]["networks"][0]["resolved"] == "random"
        last = app.of(GradfxApp.RunProgress)[-1].event
        assert last.step == last.steps
