"""Snapshot tests of the main screens (SVGs in __snapshots__/; update with --snapshot-update after checking
the change by eye). Only the tiny test effects are registered, so new built-in effects do not move them."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.screens import ErrorDialog, HelpScreen  # noqa: E402

NARROW, WIDE = (80, 24), (200, 60)


def _app(registry) -> GradfxApp:
    return GradfxApp("sample.png", weights="random", device="cpu", registry=registry)


async def _loaded(pilot) -> None:
    for _ in range(200):
        if pilot.app.loaded is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause()


async def _with_step(pilot) -> None:
    await _loaded(pilot)
    await pilot.press("down", "enter")  # tiny-dream
    await pilot.pause()


def test_start_narrow(snap_compare, tiny_registry, sample):
    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=_loaded)


def test_form_with_an_invalid_value_narrow(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        pilot.app.query_one("#param-steps").focus()
        await pilot.press("ctrl+a", "ctrl+k", *"99")
        await pilot.pause()

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_run_view_narrow(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        await pilot.press("f4")
        await pilot.pause()

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_chain_and_preview_wide(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _with_step(pilot)
        await pilot.press("enter")  # a second tiny-dream
        await pilot.press("tab")  # to the chain: the form shows step 2
        await pilot.pause()

    assert snap_compare(_app(tiny_registry), terminal_size=WIDE, run_before=run_before)


def test_error_dialog(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.push_screen(ErrorDialog("The run failed", "effect 'tiny-broken' (plugin 'tiny_plugin') failed: "
                                          "RuntimeError: this effect is broken on purpose", "Traceback ..."))
        await pilot.pause()

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)


def test_help_screen(snap_compare, tiny_registry, sample):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.push_screen(HelpScreen())
        await pilot.pause()

    assert snap_compare(_app(tiny_registry), terminal_size=NARROW, run_before=run_before)
