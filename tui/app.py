"""The gradfx terminal UI: choose effects, chain them, set their parameters, run with a live preview, save.

This module holds the app's frame: layout, keys, moving between panels, errors, quitting. The rest are
mixins of :class:`GradfxApp`, one job each: ``app_settings.py`` what a run starts from (the top bar: input
image, weights, seed, device), ``app_chain.py`` editing the chain and its forms, ``app_run.py`` running (the
engine in a thread worker whose progress callback never waits for the UI: a message at most ten times a
second, a preview copied off the device at most every :data:`~gradfx.tui.app_run.PREVIEW_INTERVAL`),
``app_save.py`` saving the output, ``app_recipes.py`` loading and saving recipes; ``app_palette.py`` is the
command palette. The panels are ``widgets/``. Everything the app does is announced by a message
(``messages.py``: ``RunStarted``, ``RunProgress``, ``PreviewReady``, ``RunFinished``, ``RunFailed``,
``OutputSaved``, ``RecipeLoaded``, ``RecipeSaved``, also reachable as ``GradfxApp.RunStarted``...) so tests
and embedders can follow it.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import ClassVar

import numpy as np
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from gradfx.engine.errors import GradfxError
from gradfx.engine.images.load import LoadedImage
from gradfx.engine.progress import CancelToken
from gradfx.engine.registry import BUILTIN, Registry, get_registry
from gradfx.engine.running import api

from . import messages
from .app_chain import ChainMixin
from .app_jobs import JobsMixin
from .app_palette import GradfxCommands
from .app_recipes import RecipeMixin
from .app_run import RunMixin, tui_advice
from .app_save import SaveMixin
from .app_settings import SettingsMixin
from .chain_model import ChainStep
from .screens import Confirm, ErrorDialog, HelpScreen
from .widgets import ChainView, EffectBrowser, ParamForm, Preview, RunPanel

#: columns from which the three-column layout is used
WIDE = 120
_MAIN_SCREEN_ACTIONS = {"run", "save", "open", "load_recipe", "save_recipe", "toggle_view", "help", "jobs"}


class GradfxApp(JobsMixin, SettingsMixin, ChainMixin, RunMixin, SaveMixin, RecipeMixin, App[None]):
    """``gradfx tui [IMAGE]``."""

    RunStarted, RunProgress, PreviewReady = messages.RunStarted, messages.RunProgress, messages.PreviewReady
    RunFinished, RunFailed, OutputSaved = messages.RunFinished, messages.RunFailed, messages.OutputSaved
    RecipeLoaded, RecipeSaved, DeviceFound = messages.RecipeLoaded, messages.RecipeSaved, messages.DeviceFound
    JobAttached, JobFinished = messages.JobAttached, messages.JobFinished

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "gradfx"
    COMMANDS = App.COMMANDS | {GradfxCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE, "-wide")]
    BINDINGS = [
        Binding("ctrl+r,f5", "run", "Run", priority=True),
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "open", "Open", priority=True),
        Binding("f2", "load_recipe", "Load recipe", show=False),
        Binding("f3", "save_recipe", "Save recipe", show=False),
        Binding("f4", "toggle_view", "View"),
        Binding("f6", "jobs", "Jobs"),
        Binding("f1", "help", "Keys"),
        # straight to a panel, as lazygit's number keys: the digit where no text field takes it, alt+digit anywhere
        Binding("1,alt+1", "panel('effects')", "Effects", show=False),
        Binding("2,alt+2", "panel('chain')", "Chain", show=False),
        Binding("3,alt+3", "panel('form')", "Parameters", show=False),
        Binding("4,alt+4", "panel('run')", "Run panel", show=False),
    ]

    # --- set-up --------------------------------------------------------------------------------------------
    def __init__(self, image: str | os.PathLike | None = None, *, weights: str = "auto", seed: int = 0,
                 device: str | None = None, longest_side: int | None = None, registry: Registry | None = None,
                 graphics: bool = False, recipe: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.registry = registry or get_registry()
        self.image_path = Path(image) if image is not None else None
        self.loaded: LoadedImage | None = None
        self.weights, self.seed, self.device, self.longest_side = weights, seed, device, longest_side
        self.device_label = "CPU" if (device or "").lower() == "cpu" else "…"
        self.graphics = graphics
        self.initial_recipe = Path(recipe) if recipe is not None else None
        self.chain: list[ChainStep] = []
        self.current: int | None = None
        self.result: api.Result | None = None
        self.saved: Path | None = None
        self.token: CancelToken | None = None
        self.running = False
        #: effect -> the model its default follows the weights to on this machine (the forms show its defaults)
        self.follows: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="topbar", markup=False)
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield EffectBrowser(id="effects")
                yield ChainView(id="chain")
            with Vertical(id="middle"):
                yield ParamForm(id="form")
            with Vertical(id="right"):
                yield RunPanel(id="run")
                yield Preview(graphics=self.graphics, id="preview")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#effects").border_title = r"\[1] Effects"
        self.query_one("#chain").border_title = r"\[2] Chain"
        self.query_one("#run").border_title = r"\[4] Run"
        self.query_one("#preview").border_title = "Preview"
        effects = sorted(self.registry.effects.values(), key=lambda e: e.name)
        self.query_one(EffectBrowser).set_effects(effects, self.registry.effect_plugin, BUILTIN)
        self.query_one(EffectBrowser).focus()
        await self._refresh_chain()
        self._update_topbar()
        problems = self.registry.problems()
        if problems:
            self.notify("; ".join(problems) + ". Command palette (ctrl+p) → Show plugin failures", title="Plugins",
                        severity="warning", timeout=12)
        if not effects:
            self.notify("No effects are registered: check 'gradfx plugins'.", severity="error", timeout=12)
        self._probe_device()  # also imports TensorFlow now, so the first run starts sooner
        self._probe_follows()
        if self.image_path is not None:
            self._load_input(self.image_path)
        if self.initial_recipe is not None:
            self._apply_recipe(self.initial_recipe)

    # --- the preview ---------------------------------------------------------------------------------------
    def _show_image(self, image: np.ndarray, caption: str) -> None:
        preview = self.query_one(Preview)
        preview.image = image
        preview.border_subtitle = caption

    # --- errors --------------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        if worker.group == "run":
            self._run_failed(error)  # type: ignore[arg-type]
        elif worker.group == "load":
            self._error("Could not open the image", error)
        elif worker.group == "save":
            self._error("Could not save", error)
        elif worker.group == "probe":
            self._set_device_label("unknown")
        elif worker.group == "follows":
            pass  # the forms keep the effects' own defaults; a run says which model it used and why
        else:
            self._error("Something went wrong", error)

    def _error(self, title: str, error: BaseException | str | None) -> None:
        if isinstance(error, GradfxError):  # an error re-raised "from None" still has its original as context
            cause = error.__cause__ or error.__context__
            message, details = str(error), _traceback(cause) if cause else ""
        elif isinstance(error, BaseException):
            message, details = f"{type(error).__name__}: {error}", _traceback(error)
        else:
            message, details = str(error), ""
        self.push_screen(ErrorDialog(title, tui_advice(message), details), self._after_error)

    def _after_error(self, _: None) -> None:
        """Focus is back where it was: select a text field's text, so typing replaces the value that failed
        (a path) instead of appending to it."""
        def select() -> None:
            if isinstance(self.focused, Input):
                self.focused.select_all()

        self.call_after_refresh(select)

    # --- keys and layout -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False  # a dialog is open: its keys, not the main screen's (ctrl+r, ctrl+s... are priority)
        if action == "cancel":
            return self.running  # shown in the footer only while there is a run to cancel
        if action == "toggle_view":  # only the narrow layout hides one of the two
            return self.narrow
        return True

    def on_resize(self, event: events.Resize) -> None:
        # the footer's keys depend on the width (f4 only when narrow): re-check them for the new one. This
        # handler runs before App's own, which sets the size (and the screen's -wide class comes later still).
        self._width = event.size.width
        self.refresh_bindings()

    @property
    def narrow(self) -> bool:
        """Whether the parameters and the run panel share the right side (below :data:`WIDE` columns)."""
        return getattr(self, "_width", self.size.width) < WIDE

    def action_panel(self, panel: str) -> None:
        """Focus a panel (1 effects, 2 chain, 3 parameters, 4 the run panel, shown on a narrow terminal)."""
        if panel == "effects":
            self.query_one(EffectBrowser).focus()
        elif panel == "chain":
            self.query_one(ChainView).focus()
        elif panel == "form":
            self.screen.remove_class("-show-run")
            self.call_after_refresh(self._focus_form)
        elif panel == "run":
            self.screen.add_class("-show-run")
            if self.focused is not None and self.focused in self.query_one(ParamForm).query("*") \
                    and self.narrow:
                self.set_focus(None)  # the form is hidden: typing must not go into it (3 or f4 come back)

    def action_toggle_view(self) -> None:
        self.screen.toggle_class("-show-run")
        if self.focused is None and not self.screen.has_class("-show-run"):
            self.call_after_refresh(self._focus_form)  # a run hid the focused field: typing went nowhere

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # --- quitting, plugins ---------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if not self.running or self.use_jobs:  # a job goes on without the app (gradfx tui says so on the way out)
            self.exit()
            return

        def answered(quit_: bool | None) -> None:
            if quit_ and self.running:
                if self.token is not None:
                    self.token.cancel()  # the engine thread stops after its current step instead of running on
                self.exit()
            elif quit_:
                self.exit()

        if not isinstance(self.screen, Confirm):
            self.push_screen(Confirm("Quit during the run?", "The run is stopped and its image is lost (esc "
                                     "cancels the run and keeps the image so far).", "y: quit · n or esc: stay"),
                             answered)

    def action_plugin_failures(self) -> None:
        failures = list(self.registry.failures())
        if not failures:
            self.notify("Every plugin loaded.")
            return
        message = "\n".join(f"{f.name} ({f.distribution or f.module}, {f.describe_status()}): " + "; ".join(f.errors)
                            for f in failures)
        details = "\n".join(t for f in failures for t in f.tracebacks if t and t != "NoneType: None\n")
        self.push_screen(ErrorDialog("Plugins that failed to load", message, details))


def _traceback(error: BaseException | None) -> str:
    if error is None:
        return ""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
