"""The gradfx terminal UI: choose effects, chain them, set their parameters, run with a live preview, save.

This module holds the app's frame: layout, the command palette, the top bar, the input image, editing the
chain, errors. Running is ``app_run.py`` (the engine in a thread worker whose progress callback never waits
for the UI: a message at most ten times a second, a preview copied off the device at most every
:data:`~gradfx.tui.app_run.PREVIEW_INTERVAL`), saving the output ``app_save.py``, recipes ``app_recipes.py``;
each is a mixin of :class:`GradfxApp`. Everything the app does is announced by a message (``messages.py``:
``RunStarted``, ``RunProgress``, ``PreviewReady``, ``RunFinished``, ``RunFailed``, ``OutputSaved``,
``RecipeLoaded``, ``RecipeSaved``, also reachable as ``GradfxApp.RunStarted``...) so tests and embedders can
follow it.
"""

from __future__ import annotations

import os
import traceback
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.worker import Worker, WorkerState

from gradfx.engine.effect import Effect
from gradfx.engine.errors import GradfxError
from gradfx.engine.images.load import LoadedImage, load_image
from gradfx.engine.params import WEIGHT_MODES
from gradfx.engine.progress import CancelToken
from gradfx.engine.registry import BUILTIN, Registry, get_registry
from gradfx.engine.running import api
from gradfx.engine.running.plan import MAX_SEED

from . import messages
from .app_recipes import RecipeMixin
from .app_run import RunMixin, tui_advice
from .app_save import SaveMixin
from .chain_model import ChainStep
from .paths import short_path
from .preview import shrink
from .screens import Confirm, ErrorDialog, FilePicker, HelpScreen, TextPrompt, suffix_list
from .widgets import ChainView, EffectBrowser, ParamForm, Preview, RunPanel

WEIGHT_SUFFIXES = (".h5", ".weights.h5", ".hdf5")  # what engine.models loads
#: columns from which the three-column layout is used
WIDE = 120
_MAIN_SCREEN_ACTIONS = {"run", "save", "open", "load_recipe", "save_recipe", "toggle_view", "help"}


class GradfxCommands(Provider):
    """The command palette (ctrl+p): the main actions, and "Add <effect>" for every effect."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        app = self.app
        assert isinstance(app, GradfxApp)
        out: list[tuple[str, str, Any]] = [
            ("Run the chain", "run every step on the input image (ctrl+r)", app.action_run),
            ("Cancel the run", "stop after the current step and keep the image so far (esc)", app.action_cancel),
            ("Save output", "write the result image, atomically (ctrl+s)", app.action_save),
            ("Open input image", "choose the image the chain starts from (ctrl+o)", app.action_open),
            ("Load recipe", "replace the chain with a recipe's steps (f2)", app.action_load_recipe),
            ("Save recipe", "write the chain as a TOML recipe (f3)", app.action_save_recipe),
            ("Toggle preview", "show the run panel or the parameters on a narrow terminal (f4)",
             app.action_toggle_view),
            ("Clear chain", "remove every step", app.action_clear_chain),
            ("Show plugin failures", "plugins that failed to load, and why", app.action_plugin_failures),
            ("Keys", "every key binding (f1)", app.action_help),
        ]
        out += [(f"Weights: {mode}", f"use {mode} weights for the next run", partial(app.set_weights, mode))
                for mode in WEIGHT_MODES]
        out += [("Weights: a file…", f"load backbone weights from a {suffix_list(WEIGHT_SUFFIXES)} file",
                 app.action_weights_file),
                ("Seed…", f"the random seed (now {app.seed}); the same seed repeats a CPU run", app.action_seed)]
        out += [(f"Add {name}", eff.summary, partial(app.add_step, name))
                for name, eff in sorted(app.registry.effects.items())]
        form = app.query_one(ParamForm)
        if form.effect is not None:  # jump to a field of the step being edited by its name
            out += [(f"Go to {p.name}", f"the {p.name} field of step {form.index + 1} ({form.effect.name})",
                     partial(app.focus_param, p.name)) for p in form.effect.schema]
        out += [(f"Go to {title}", f"focus the {title} panel ({key})", partial(app.action_panel, panel))
                for title, key, panel in (("effects", "1", "effects"), ("chain", "2", "chain"),
                                          ("parameters", "3", "form"), ("run panel", "4", "run"))]
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands()[:10]:
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class GradfxApp(RunMixin, SaveMixin, RecipeMixin, App[None]):
    """``gradfx tui [IMAGE]``."""

    RunStarted, RunProgress, PreviewReady = messages.RunStarted, messages.RunProgress, messages.PreviewReady
    RunFinished, RunFailed, OutputSaved = messages.RunFinished, messages.RunFailed, messages.OutputSaved
    RecipeLoaded, RecipeSaved, DeviceFound = messages.RecipeLoaded, messages.RecipeSaved, messages.DeviceFound

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
        Binding("f1", "help", "Keys"),
        # straight to a panel, as lazygit's number keys: the digit where no text field takes it, alt+digit anywhere
        Binding("1,alt+1", "panel('effects')", "Effects", show=False),
        Binding("2,alt+2", "panel('chain')", "Chain", show=False),
        Binding("3,alt+3", "panel('form')", "Parameters", show=False),
        Binding("4,alt+4", "panel('run')", "Run panel", show=False),
    ]

    # --- set-up --------------------------------------------------------------------------------------------
    def __init__(self, image: str | os.PathLike | None = None, *, weights: str = "auto", seed: int = 0,
                 device: str | None = None, size: int | None = None, registry: Registry | None = None,
                 graphics: bool = False, recipe: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.registry = registry or get_registry()
        self.image_path = Path(image) if image is not None else None
        self.loaded: LoadedImage | None = None
        self.weights, self.seed, self.device, self.max_size = weights, seed, device, size
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

    # --- top bar -------------------------------------------------------------------------------------------
    def _update_topbar(self) -> None:
        if self.loaded is not None:
            w, h = self.loaded.size
            image = f"{short_path(self.image_path, 24)} {w}×{h}"
        else:
            image = short_path(self.image_path, 24) if self.image_path else "none (ctrl+o opens one)"
        weights = short_path(self.weights, 24) if self.weights not in WEIGHT_MODES else self.weights
        parts = [f"gradfx │ input {image}", f"weights {weights}", f"seed {self.seed}", f"device {self.device_label}"]
        self.query_one("#topbar", Static).update(" │ ".join(parts))

    @work(thread=True, exit_on_error=False, group="probe")
    def _probe_device(self) -> None:
        from gradfx.engine.models import device as devices

        devices.quiet_tensorflow()
        try:
            label = devices.device_name(self.device)
        except GradfxError as exc:
            label = f"unavailable ({exc})"
        self.post_message(messages.DeviceFound(label))  # thread-safe, and a no-op if the app has gone meanwhile

    @work(thread=True, exit_on_error=False, group="follows", exclusive=True)
    def _probe_follows(self) -> None:
        """Which effects' default models follow the weights to the trained VGG16 here (no ImageNet file for
        InceptionV3 offline...): their forms then show the defaults a run will use, not the default model's."""
        from gradfx.engine.models import device as devices
        from gradfx.engine.models.choice import followed_model

        devices.quiet_tensorflow()
        weights, follows = self.weights, {}
        for name, eff in self.registry.effects.items():
            try:
                model = followed_model(eff, self.registry, weights)
            except GradfxError:  # a broken model plugin: the run says what is wrong
                model = None
            if model:
                follows[name] = model
        self.post_message(messages.FollowsFound(weights, follows))

    async def on_gradfx_app_follows_found(self, message: messages.FollowsFound) -> None:
        if message.weights != self.weights or message.follows == self.follows:
            return  # the weights changed meanwhile (a newer probe is on its way), or nothing changed
        self.follows = message.follows
        self._apply_follows()
        self.query_one(ChainView).show(self.chain, self._effects(), self.current)
        form = self.query_one(ParamForm)
        if form.about is not None:
            await self._show_about(form.about)
        elif self.current is not None and self.chain:
            step = self.chain[self.current]
            await form.show(self.current, step, self.registry.effects.get(step.effect))

    def _apply_follows(self) -> None:
        for step in self.chain:
            step.follow(self.follows.get(step.effect), self.registry.effects.get(step.effect))

    def on_gradfx_app_device_found(self, message: messages.DeviceFound) -> None:
        self._set_device_label(message.label)

    def _set_device_label(self, label: str) -> None:
        self.device_label = label
        self._update_topbar()

    def set_weights(self, mode: str) -> None:
        self.weights = mode
        self._update_topbar()
        self._probe_follows()
        self.notify(f"weights: {mode} for the next run")

    def action_weights_file(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.set_weights(str(path))

        self.push_screen(FilePicker("Weights file", None, WEIGHT_SUFFIXES), chosen)

    def action_seed(self) -> None:
        def parse(text: str) -> int:
            if not text.isdigit() or int(text) > MAX_SEED:
                raise ValueError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
            return int(text)

        def chosen(seed: int | None) -> None:
            if seed is not None:
                self.seed = seed
                self._update_topbar()

        self.push_screen(TextPrompt("Random seed", str(self.seed), "enter: set · esc: cancel", parse), chosen)

    # --- input image ---------------------------------------------------------------------------------------
    def action_open(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self._load_input(path)

        self.push_screen(FilePicker("Open input image", self.image_path), chosen)

    @work(thread=True, exit_on_error=False, group="load")
    def _load_input(self, path: Path) -> None:
        loaded = load_image(path, max_size=self.max_size)
        self.call_from_thread(self._input_loaded, path, loaded)

    def _input_loaded(self, path: Path, loaded: LoadedImage) -> None:
        self.image_path, self.loaded = path, loaded
        if not self.running:
            self._show_input()
        self._update_topbar()

    def _show_input(self) -> None:
        if self.loaded is not None:
            self._show_image(shrink(self.loaded.rgb), f"input {self.loaded.size[0]}×{self.loaded.size[1]}")

    def _show_image(self, image: np.ndarray, caption: str) -> None:
        preview = self.query_one(Preview)
        preview.image = image
        preview.border_subtitle = caption

    # --- chain ---------------------------------------------------------------------------------------------
    def add_step(self, effect: str, values: dict[str, Any] | None = None) -> None:
        self.chain.append(ChainStep(effect, dict(values or {})))
        self.current = len(self.chain) - 1
        self.run_worker(self._refresh_chain(), group="chain")
        eff = self.registry.effects.get(effect)
        if eff is not None and not eff.needs_input and len(self.chain) > 1:
            self.notify(f"{effect} makes its image from nothing: it ignores the output of the step(s) before "
                        "it. Put it first, or remove them (x on the chain).", title="Input ignored",
                        severity="warning", timeout=10)

    def action_clear_chain(self) -> None:
        self.chain.clear()
        self.current = None
        self.run_worker(self._refresh_chain(), group="chain")

    def _effects(self) -> list[Effect | None]:
        """Each step's effect (None where it is not registered)."""
        return [self.registry.effects.get(step.effect) for step in self.chain]

    async def _refresh_chain(self) -> None:
        view = self.query_one(ChainView)
        if not self.chain:
            self.current = None
        self._apply_follows()
        view.show(self.chain, self._effects(), self.current)
        view.border_title = f"Chain ({len(self.chain)} step{'s' if len(self.chain) != 1 else ''})"
        await self._show_form()

    async def _show_form(self) -> None:
        form = self.query_one(ParamForm)
        if self.current is None or not self.chain:
            await form.show(-1, None, None)
            return
        step = self.chain[self.current]
        if form.step is step and form.index == self.current:
            return
        await form.show(self.current, step, self.registry.effects.get(step.effect))

    @on(OptionList.OptionSelected, "#effects")
    def _effect_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.add_step(event.option.id)

    @on(OptionList.OptionHighlighted, "#effects")
    async def _effect_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        eff = self.registry.effects.get(event.option.id or "")
        if eff is not None and (event.option_list.has_focus or not self.chain):
            await self._show_about(eff)

    async def _show_about(self, eff: Effect) -> None:
        plugin = self.registry.effect_plugin.get(eff.name)
        await self.query_one(ParamForm).show_about(eff, None if plugin == BUILTIN else plugin,
                                                   self.follows.get(eff.name))

    async def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.screen_stack:  # the app is closing: the focus came after its screen went
            return
        if isinstance(event.widget, ChainView):
            if not self.running:
                self.screen.remove_class("-show-run")
            await self._show_form()

    @on(OptionList.OptionHighlighted, "#chain")
    async def _step_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if 0 <= event.option_index < len(self.chain) and event.option_index != self.current:
            self.current = event.option_index
            await self._show_form()

    @on(OptionList.OptionSelected, "#chain")
    def _step_selected(self, event: OptionList.OptionSelected) -> None:
        self.screen.remove_class("-show-run")
        self.call_after_refresh(self._focus_form)

    def _focus_form(self) -> None:
        fields = [w for w in self.query_one(ParamForm).query("Input, Select, Checkbox") if w.focusable]
        if fields:
            fields[0].focus()

    @on(ChainView.Edit)
    async def _edit_chain(self, event: ChainView.Edit) -> None:
        i = event.index
        if not 0 <= i < len(self.chain):
            return
        if event.op == "remove":
            del self.chain[i]
            self.current = min(i, len(self.chain) - 1) if self.chain else None
        elif event.op == "duplicate":
            self.chain.insert(i + 1, self.chain[i].copy())
            self.current = i + 1
        elif event.op == "move":
            j = i + event.delta
            if not 0 <= j < len(self.chain):
                return
            self.chain[i], self.chain[j] = self.chain[j], self.chain[i]
            self.current = j
        await self._refresh_chain()

    @on(ParamForm.Changed)
    def _param_changed(self, event: ParamForm.Changed) -> None:
        if 0 <= event.index < len(self.chain):
            self.query_one(ChainView).show(self.chain, self._effects(), self.current)
            self._forget_fix_first()

    @on(ParamForm.Browse)
    def _browse(self, event: ParamForm.Browse) -> None:
        form = self.query_one(ParamForm)
        step = self.chain[event.index] if 0 <= event.index < len(self.chain) else None
        current = step.text(event.param) if step is not None else ""
        last = str(current).split(",")[-1].strip()
        start = Path(last) if last and last not in (event.param.choices or ()) else self.image_path

        def chosen(path: Path | None) -> None:
            if path is None or form.index != event.index:
                return
            text = short_path(path, 10_000)
            if event.param.kind == "images" and current:
                text = f"{current},{text}"
            form.set_value(event.param.name, text)

        self.push_screen(FilePicker(f"Choose {event.param.name}", start), chosen)

    # --- running -------------------------------------------------------------------------------------------
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False  # a dialog is open: its keys, not the main screen's (ctrl+r, ctrl+s... are priority)
        if action == "cancel":
            return self.running  # shown in the footer only while there is a run to cancel
        if action == "toggle_view":  # only the narrow layout hides one of the two
            return self.narrow
        return True

    # --- saving --------------------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if not self.running:
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

    def on_resize(self, event: events.Resize) -> None:
        # the footer's keys depend on the width (f4 only when narrow): re-check them for the new one. This
        # handler runs before App's own, which sets the size (and the screen's -wide class comes later still).
        self._width = event.size.width
        self.refresh_bindings()

    @property
    def narrow(self) -> bool:
        """Whether the parameters and the run panel share the right side (below :data:`WIDE` columns)."""
        return getattr(self, "_width", self.size.width) < WIDE

    # --- moving around ---------------------------------------------------------------------------------------
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

    def focus_param(self, name: str) -> None:
        """Jump to a parameter's field in the form (the palette's "Go to NAME")."""
        self.screen.remove_class("-show-run")
        fields = self.query_one(ParamForm).query(f"#param-{name}")
        if fields:
            fields.first().focus()

    # --- misc ----------------------------------------------------------------------------------------------
    def action_toggle_view(self) -> None:
        self.screen.toggle_class("-show-run")
        if self.focused is None and not self.screen.has_class("-show-run"):
            self.call_after_refresh(self._focus_form)  # a run hid the focused field: typing went nowhere

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

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


