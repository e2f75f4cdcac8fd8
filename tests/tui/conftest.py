"""TUI test fixtures: a registry holding only the tiny test effects, a sample image, an app that records
every message it posts."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests here with asyncio (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.fixture
def tiny_registry():
    """A registry with only ``tiny_plugin`` (no built-ins, no external plugins), installed process-wide, so
    the screens do not change when built-in effects are added."""
    import tiny_plugin

    from gradfx.engine import hookimpl
    from gradfx.engine import registry as reg_mod

    class BuiltinModels:  # the built-in backbones without the built-in effects
        @hookimpl
        def gradfx_register_models(self, register):
            from gradfx.engine.modelspecs import BUILTIN_MODELS

            for spec in BUILTIN_MODELS:
                register(spec)

    fresh = reg_mod.Registry(builtins=False, external=False)
    fresh.add_plugin(BuiltinModels(), "models")
    fresh.add_plugin(tiny_plugin, "tiny_plugin")
    old = reg_mod.reset_registry(fresh)
    try:
        yield fresh
    finally:
        reg_mod.reset_registry(old)


@pytest.fixture
def sample(tmp_path, monkeypatch, make_image) -> Path:
    """``sample.png`` (48 x 40) in a temporary working folder, which the test runs in."""
    from gradfx.engine.images.save import save_image

    monkeypatch.chdir(tmp_path)
    save_image(tmp_path / "sample.png", make_image(40, 48, "blobs", seed=3))
    return Path("sample.png")


def _recording_app(**kwargs):
    from gradfx.tui.app import GradfxApp

    class Recording(GradfxApp):
        def __init__(self, *a, **kw) -> None:
            self.posted: list = []
            self.gate: threading.Event | None = None  # set it to hold the engine at its first progress
            super().__init__(*a, **kw)

        def post_message(self, message) -> bool:
            self.posted.append(message)
            result = super().post_message(message)
            gate = self.gate
            if gate is not None and isinstance(message, GradfxApp.RunProgress):
                gate.wait(30)  # runs in the engine thread: the engine waits here
            return result

        def of(self, kind: type) -> list:
            return [m for m in self.posted if isinstance(m, kind)]

    return Recording(**kwargs)


async def _wait_for(pilot, predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        await pilot.pause(0.05)
    await pilot.pause()  # a message is recorded when posted: let the app handle it


@pytest.fixture
def recording_app():
    """``recording_app(**GradfxApp kwargs)``: an app that keeps every message it posts to itself in
    ``.posted`` (``app.of(GradfxApp.RunFinished)`` filters them)."""
    return _recording_app


@pytest.fixture
def wait_for():
    """``await wait_for(pilot, predicate, timeout=60)``: let the app run until ``predicate()`` holds (the
    engine runs in a thread, on shared CPUs)."""
    return _wait_for
