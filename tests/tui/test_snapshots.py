"""Snapshot tests of the main screens (SVGs in __snapshots__/; update with --snapshot-update after checking
the change by eye). Only the tiny test effects are registered, so new built-in effects do not move them."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pytest_textual_snapshot")

from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.screens import ErrorDialog, HelpScreen  # noqa: E402
from gradfx.tui.widgets import ParamForm, Preview  # noqa: E402

NARROW, WIDE = (80, 24), (200, 60)


def _app(registry) -> GradfxApp:
    return GradfxApp("sample.png", weights="random", device="cpu", registry=registry)


async def _until(pilot, predicate, what: str) -> None:
    """Let the app run until ``predicate()`` holds: a state, not a clock (the image loads and the form is
    built in workers, which take their time on a busy machine). The deadline only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"the app never reached this state: {what}")
        await pilot.pause(0.02)
    await pilot.pause()


async def _loaded(pilot) -> None:
    await _until(pilot, lambda: pilot.app.loaded is not None and pilot.app.query_one(Preview).image is not None,
                 "the input image shown")


def _field(pilot, name: str):
    found = pilot.app.query(f"#param-{name}")
    return found.first() if found else None


async def _with_step(pilot) -> None:
    await _loaded(pilot)
    await pilot.press("down", "enter")  # tiny-dream
    await _until(pilot, lambda: _field(pilot, "steps") is not None, "the form of step 1")


def test_start_narrow(snap_compare, tiny_registry, sample):
    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=_loaded)


def test_form_with_an_invalid_value_narrow(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        pilot.app.query_one("#param-steps").focus()
        await pilot.press("ctrl+a", "ctrl+k", *"99")
        await _until(pilot, lambda: _field(pilot, "steps").value == "99"
                     and pilot.app.query_one("#error-steps").display, "99 typed and its error shown")
        # the focused field's cursor blinks every 0.5 s: on a busy machine the screenshot came a blink later
        # and caught it off. A steady cursor; and the wait a busy machine adds, which must change nothing.
        _field(pilot, "steps").cursor_blink = False
        await pilot.pause(0.6)

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_run_view_narrow(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        await pilot.press("f4")
        await _until(pilot, lambda: pilot.app.screen.has_class("-show-run"), "the run panel shown")

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_chain_and_preview_wide(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        await pilot.press("enter")  # a second tiny-dream
        await pilot.press("tab")  # to the chain: the form shows step 2
        await _until(pilot, lambda: pilot.app.query_one(ParamForm).index == 1 and _field(pilot, "steps")
                     is not None and pilot.app.focused is pilot.app.query_one("#chain"), "step 2's form")

    assert snap_compare(_app(tiny_registry), terminal_size=WIDE, run_before=run_before)


def test_error_dialog(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.push_screen(ErrorDialog("The run failed", "effect 'tiny-broken' (plugin 'tiny_plugin') failed: "
                                          "RuntimeError: this effect is broken on purpose", "Traceback ..."))
        await _until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog) and pilot.app.focused is not None,
                     "the dialog open")

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_help_screen(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.push_screen(HelpScreen())
        await _until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help open")

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)
