"""The gradfx terminal UI: choose effects, chain them, set their parameters, run with a live preview, save.

The engine runs in a thread worker. Its progress callback never waits for the UI: it posts a message at
most ten times a second and copies a preview image off the device at most a few times a second
(:data:`PREVIEW_INTERVAL`). Everything the app does is announced by a message (``RunStarted``,
``RunProgress``, ``PreviewReady``, ``RunFinished``, ``RunFailed``, ``OutputSaved``, ``RecipeLoaded``,
``RecipeSaved``) so tests and embedders can follow it.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.worker import Worker, WorkerState

from gradfx.engine import api, imageio
from gradfx.engine.effect import Effect
from gradfx.engine.errors import GradfxError, ParameterError, UnknownEffectError, suggest
from gradfx.engine.params import WEIGHT_MODES
from gradfx.engine.progress import CancelToken, ProgressEvent
from gradfx.engine.registry import BUILTIN, Registry, get_registry

from .chain import ChainStep, load_recipe, save_recipe
from .preview import shrink
from .screens import RECIPE_SUFFIXES, ErrorDialog, FilePicker, HelpScreen, PathPrompt, TextPrompt, suffix_list
from .widgets import ChainView, EffectBrowser, ParamForm, Preview, RunPanel, chain_step, short_path

#: seconds between preview copies from the engine thread
PREVIEW_INTERVAL = 0.4
#: seconds between progress messages (the last step of a stage is always sent)
PROGRESS_INTERVAL = 0.1
WEIGHT_SUFFIXES = (".h5", ".weights.h5", ".hdf5")  # what engine.models loads
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


class GradfxApp(App[None]):
    """``gradfx tui [IMAGE]``."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "gradfx"
    COMMANDS = App.COMMANDS | {GradfxCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("ctrl+r,f5", "run", "Run", priority=True),
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "open", "Open", priority=True),
        Binding("f2", "load_recipe", "Load recipe", show=False),
        Binding("f3", "save_recipe", "Save recipe", show=False),
        Binding("f4", "toggle_view", "View"),
        Binding("f1", "help", "Keys"),
    ]

    # --- messages ------------------------------------------------------------------------------------------
    class RunStarted(Message):
        def __init__(self, steps: list[tuple[str, dict[str, Any], str | None]]) -> None:
            super().__init__()
            self.steps = steps

    class RunProgress(Message):
        """A progress event, and the losses so far of its chain step."""

        def __init__(self, event: ProgressEvent, losses: list[float]) -> None:
            super().__init__()
            self.event, self.losses = event, losses

    class PreviewReady(Message):
        def __init__(self, image: np.ndarray) -> None:
            super().__init__()
            self.image = image

    class RunFinished(Message):
        def __init__(self, result: api.Result, cancelled: bool) -> None:
            super().__init__()
            self.result, self.cancelled = result, cancelled

    class RunFailed(Message):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    class OutputSaved(Message):
        def __init__(self, paths: list[Path]) -> None:
            super().__init__()
            self.paths = paths

    class RecipeLoaded(Message):
        def __init__(self, path: Path, steps: list[ChainStep]) -> None:
            super().__init__()
            self.path, self.steps = path, steps

    class DeviceFound(Message):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    class RecipeSaved(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    # --- set-up --------------------------------------------------------------------------------------------
    def __init__(self, image: str | os.PathLike | None = None, *, weights: str = "auto", seed: int = 0,
                 device: str | None = None, size: int | None = None, registry: Registry | None = None,
                 graphics: bool = False, recipe: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.registry = registry or get_registry()
        self.image_path = Path(image) if image is not None else None
        self.loaded: imageio.LoadedImage | None = None
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
        self.query_one("#effects").border_title = "Effects"
        self.query_one("#chain").border_title = "Chain"
        self.query_one("#run").border_title = "Run"
        self.query_one("#preview").border_title = "Preview"
        effects = sorted(self.registry.effects.values(), key=lambda e: e.name)
        self.query_one(EffectBrowser).set_effects(effects, self.registry.effect_plugin, BUILTIN)
        self.query_one(EffectBrowser).focus()
        await self._refresh_chain()
        self._update_topbar()
        failures = list(self.registry.failures())
        if failures:
            names = ", ".join(f.name for f in failures)
            self.notify(f"{len(failures)} plugin(s) failed to load: {names}. Command palette (ctrl+p) → "
                        "Show plugin failures", title="Plugins", severity="warning", timeout=12)
        if not effects:
            self.notify("No effects are registered: check 'gradfx plugins'.", severity="error", timeout=12)
        self._probe_device()  # also imports TensorFlow now, so the first run starts sooner
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
        from gradfx.engine import device as devices

        devices.quiet_tensorflow()
        try:
            label = devices.device_name(self.device)
        except GradfxError as exc:
            label = f"unavailable ({exc})"
        self.post_message(self.DeviceFound(label))  # thread-safe, and a no-op if the app has gone meanwhile

    def on_gradfx_app_device_found(self, message: DeviceFound) -> None:
        self._set_device_label(message.label)

    def _set_device_label(self, label: str) -> None:
        self.device_label = label
        self._update_topbar()

    def set_weights(self, mode: str) -> None:
        self.weights = mode
        self._update_topbar()
        self.notify(f"weights: {mode} for the next run")

    def action_weights_file(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.set_weights(str(path))

        self.push_screen(FilePicker("Weights file", None, WEIGHT_SUFFIXES), chosen)

    def action_seed(self) -> None:
        def parse(text: str) -> int:
            if not text.isdigit() or int(text) > api.MAX_SEED:
                raise ValueError(f"{text!r} is not a whole number from 0 to {api.MAX_SEED}")
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
        loaded = imageio.load_image(path, max_size=self.max_size)
        self.call_from_thread(self._input_loaded, path, loaded)

    def _input_loaded(self, path: Path, loaded: imageio.LoadedImage) -> None:
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
            plugin = self.registry.effect_plugin.get(eff.name)
            await self.query_one(ParamForm).show_about(eff, None if plugin == BUILTIN else plugin)

    async def on_descendant_focus(self, event: events.DescendantFocus) -> None:
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
    def _validated_steps(self) -> list[tuple[str, dict[str, Any], str | None]] | None:
        if not self.chain:
            self.notify("The chain is empty: choose an effect on the left and press enter.", severity="warning")
            return None
        steps = []
        for i, step in enumerate(self.chain, 1):
            eff = self.registry.effects.get(step.effect)
            if eff is None:
                self._error("Unknown effect", f"step {i}: effect {step.effect!r} is not registered "
                                              "(a plugin may have failed to load); remove the step")
                return None
            try:
                params = step.params(eff)
                api.prepare(eff, params, registry=self.registry, where=f"step {i} ({eff.name})")
            except GradfxError as exc:
                self.current = i - 1
                self.screen.remove_class("-show-run")  # the form has to be visible to fix the value
                self.run_worker(self._refresh_chain(), group="chain")
                self.notify(str(exc), title="Fix a parameter first", severity="error", timeout=8)
                return None
            steps.append((step.effect, params, step.model))
        first = self.registry.effects[steps[0][0]]
        if first.needs_input and self.loaded is None:
            self.notify(f"{first.name} needs an input image: press ctrl+o to open one.", severity="warning")
            return None
        return steps

    def action_run(self) -> None:
        if self.running:
            self.notify("A run is in progress: esc cancels it.", severity="warning")
            return
        steps = self._validated_steps()
        if steps is None:
            return
        self.token = CancelToken()
        self.running = True
        self.refresh_bindings()
        self.screen.add_class("-show-run")
        self.query_one(RunPanel).reset(f"starting {' → '.join(e for e, _, _ in steps)}: loading the model "
                                       f"({self.weights} weights)…")
        self.post_message(self.RunStarted(steps))
        self._run(steps, self.token, self.loaded if self.registry.effects[steps[0][0]].needs_input else None)

    @work(thread=True, exit_on_error=False, group="run", name="run")
    def _run(self, steps: list[tuple[str, dict[str, Any], str | None]], token: CancelToken,
             image: imageio.LoadedImage | None) -> None:
        from gradfx.engine import device as devices

        devices.quiet_tensorflow()
        losses: list[float] = []  # the current chain step's: the sparkline shows one step's curve
        last: dict[str, Any] = {"progress": 0.0, "preview": time.monotonic(), "step": None}

        def progress(event: ProgressEvent) -> None:
            if chain_step(event) != last["step"]:
                last["step"] = chain_step(event)
                losses.clear()
            losses.append(event.loss)
            now = time.monotonic()
            if now - last["progress"] >= PROGRESS_INTERVAL or event.step >= event.steps:
                last["progress"] = now
                self.post_message(self.RunProgress(dataclasses.replace(event, _preview=None), list(losses)))
            if now - last["preview"] >= PREVIEW_INTERVAL:
                last["preview"] = now
                preview = event.preview()
                if preview is not None:
                    self.post_message(self.PreviewReady(shrink(preview)))

        result = api.run_chain([api.Step(e, p, m) for e, p, m in steps], image, weights=self.weights, seed=self.seed,
                               device=self.device, progress=progress, cancel=token, registry=self.registry)
        self.post_message(self.RunFinished(result, token.cancelled))

    def on_gradfx_app_run_progress(self, message: RunProgress) -> None:
        self.query_one(RunPanel).show_event(message.event, message.losses)

    def on_gradfx_app_preview_ready(self, message: PreviewReady) -> None:
        if self.running:
            self._show_image(message.image, "live")

    def on_gradfx_app_run_finished(self, message: RunFinished) -> None:
        self.running = False
        self.refresh_bindings()
        self.result = message.result
        report = message.result.report
        h, w = message.result.image.shape[:2]
        self._show_image(shrink(message.result.image),
                         f"result {w}×{h}" + (" (partial)" if message.result.partial else ""))
        panel = self.query_one(RunPanel)
        seconds = report.get("seconds", 0.0)
        if message.result.partial:
            why = "cancelled" if message.cancelled else "stopped early"
            panel.status(f"{why} after {seconds:.1f}s: the image so far is kept — ctrl+s saves it")
        else:
            panel.status(f"done in {seconds:.1f}s — ctrl+s saves the output")
            bar = panel.query_one("#bar")
            bar.update(progress=bar.total)  # type: ignore[attr-defined]
        warnings = [w for r in report.get("reports", [report]) for w in r.get("warnings", [])]
        for warning in dict.fromkeys(warnings):
            self.notify(warning, title="Warning", severity="warning", timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        if worker.group == "run":
            self.running = False
            self.refresh_bindings()
            self.query_one(RunPanel).status("failed — see the error; fix it and press ctrl+r again")
            self._show_input()  # not the last live image, still captioned "live"
            self.post_message(self.RunFailed(error))  # type: ignore[arg-type]
            self._error("The run failed", error)
        elif worker.group == "load":
            self._error("Could not open the image", error)
        elif worker.group == "save":
            self._error("Could not save", error)
        elif worker.group == "probe":
            self._set_device_label("unknown")
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
        self.push_screen(ErrorDialog(title, message, details))

    def action_cancel(self) -> None:
        if self.running and self.token is not None:
            self.token.cancel()
            self.query_one(RunPanel).status("cancelling after the current step…")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False  # a dialog is open: its keys, not the main screen's (ctrl+r, ctrl+s... are priority)
        if action == "cancel":
            return self.running  # shown in the footer only while there is a run to cancel
        if action == "toggle_view":  # only the narrow layout hides one of the two
            return not self.screen.has_class("-wide")
        return True

    # --- saving --------------------------------------------------------------------------------------------
    def _protected(self) -> list[str]:
        paths = [str(self.image_path)] if self.image_path else []
        for step in self.chain:
            eff = self.registry.effects.get(step.effect)
            if eff is not None:  # images, init = a file, direction(L, 'v.npy')...
                paths += [path for _, path in eff.schema.files(step.values)]
        return paths

    def default_output(self) -> Path:
        stem = self.image_path.stem if self.image_path else "gradfx"
        last = self.chain[-1].effect if self.chain else "out"
        if self.result is not None:
            names = self.result.report.get("chain") or [self.result.report.get("effect", last)]
            last = names[-1]
        path = Path(f"{stem}-{last}.png")
        n = 2
        while path.exists():
            path = Path(f"{stem}-{last}-{n}.png")
            n += 1
        return path

    def action_save(self) -> None:
        if self.result is None:
            self.notify("Nothing to save yet: ctrl+r runs the chain.", severity="warning")
            return
        self._ask_path("Save output as", str(self.default_output()), "", self._save, problem=self._output_problem)

    def _ask_path(self, title: str, value: str, hint: str, save: Callable[[Path], None], *,
                  problem: Callable[[Path], str | None] = lambda path: None,
                  normalise: Callable[[Path], Path] = lambda path: path, confirmed: Path | None = None) -> None:
        """Ask where to save, then ``save(path)``. The prompt stays open, keeping the name for editing, while
        ``problem(path)`` has something to say; replacing an existing file takes enter a second time."""
        def chosen(path: Path | None) -> None:
            if path is None:
                return
            path = normalise(path)
            again = partial(self._ask_path, title, str(path), save=save, problem=problem, normalise=normalise)
            why = problem(path)
            if why:
                again(why)
            elif path.exists() and path != confirmed:
                again(f"{path} exists: enter again to replace it, or edit the name", confirmed=path)
            else:
                save(path)

        self.push_screen(PathPrompt(title, value, hint), chosen)

    def _output_problem(self, path: Path) -> str | None:
        """Why ``Result.save`` would refuse ``path`` (an unknown extension, a missing folder, an image the
        chain reads), in the TUI's words; None if it would not."""
        try:
            imageio.check_output_path(path)
        except GradfxError as exc:
            return str(exc)
        try:
            imageio.check_output_path(path, protect=self._protected())
        except GradfxError:
            return f"{path} is an image the chain reads (the input or a parameter): choose another name"
        return None

    @work(thread=True, exit_on_error=False, group="save")
    def _save(self, path: Path) -> None:
        assert self.result is not None
        written = self.result.save(path, overwrite=True, protect=self._protected())
        self.call_from_thread(self._saved, written)

    def _saved(self, written: list[Path]) -> None:
        self.saved = written[0]
        self.query_one(RunPanel).status(f"saved {short_path(written[0], 60)}"
                                        + (f" and {len(written) - 1} more file(s)" if len(written) > 1 else ""))
        self.notify(f"saved {written[0]}" + (f" (+{len(written) - 1} more)" if len(written) > 1 else ""))
        self.post_message(self.OutputSaved(list(written)))

    # --- recipes -------------------------------------------------------------------------------------------
    def action_load_recipe(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self._apply_recipe(path)

        self.push_screen(FilePicker("Load recipe", None, RECIPE_SUFFIXES), chosen)

    def _apply_recipe(self, path: Path) -> None:
        path_params = {name: [p for p in eff.schema if p.has_paths] for name, eff in self.registry.effects.items()}
        try:
            recipe = load_recipe(path, path_params)
            for i, step in enumerate(recipe.steps, 1):
                eff = self.registry.effects.get(step.effect)
                if eff is None:
                    raise UnknownEffectError(f"{path}: step {i}: unknown effect {step.effect!r}"
                                             f"{suggest(step.effect, self.registry.effects)}; "
                                             "'gradfx list' shows the effects")
                unknown = [k for k in step.values if k not in eff.schema]
                if unknown:
                    raise eff.schema.unknown(unknown[0], f"{path}: step {i} ({eff.name})")
        except GradfxError as exc:
            self._error("Could not load the recipe", exc)
            return
        self.chain = recipe.steps
        self.current = 0
        self.run_worker(self._refresh_chain(), group="chain")
        self.query_one(ChainView).focus()  # show the loaded steps, not the effect the browser is on
        adopted = []
        if recipe.seed is not None:
            self.seed = recipe.seed
            adopted.append(f"seed {recipe.seed}")
        if recipe.weights is not None and self.weights == "auto":
            self.weights = recipe.weights
            adopted.append(f"weights {recipe.weights}")
        if recipe.input and self.image_path is None:
            if Path(recipe.input).is_file():
                self._load_input(Path(recipe.input))
                adopted.append("its input image")
            else:
                self.notify(f"the recipe's input {recipe.input} is not a file: ctrl+o opens an input image",
                            severity="warning", timeout=10)
        self._update_topbar()
        self.notify(f"loaded {len(recipe.steps)} step(s) from {path}"
                    + (f" (with {', '.join(adopted)})" if adopted else ""))
        self.post_message(self.RecipeLoaded(path, recipe.steps))

    def action_save_recipe(self) -> None:
        if not self.chain:
            self.notify("The chain is empty: nothing to save.", severity="warning")
            return
        try:
            steps = []
            for i, step in enumerate(self.chain, 1):
                eff = self.registry.effect(step.effect)
                try:
                    steps.append((step.effect, step.params(eff), step.model))
                except ParameterError as exc:
                    raise ParameterError(f"step {i} ({eff.name}): {exc}") from None
        except GradfxError as exc:
            self._error("Could not save the recipe", exc)
            return

        def save(path: Path) -> None:
            folder = path.expanduser().resolve().parent
            try:
                written = save_recipe(
                    path, [(e, _relative_images(self.registry, e, p, folder), m) for e, p, m in steps],
                    input=_relative(str(self.image_path), folder) if self.image_path else None,
                    seed=self.seed or None, weights=None if self.weights == "auto" else self.weights)
            except (GradfxError, OSError) as exc:
                self._error("Could not save the recipe", exc)
                return
            self.notify(f"saved recipe {written}")
            self.post_message(self.RecipeSaved(Path(written)))

        self._ask_path("Save recipe as", "recipe.toml", "enter: save · esc: cancel · image paths are written "
                       "relative to the recipe", save, normalise=_toml)

    async def action_quit(self) -> None:
        if self.token is not None:
            self.token.cancel()  # the engine thread stops after its current step instead of running on
        self.exit()

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
        message = "\n".join(f"{f.name} ({f.distribution or f.module}): " + "; ".join(f.errors) for f in failures)
        details = "\n".join(t for f in failures for t in f.tracebacks if t and t != "NoneType: None\n")
        self.push_screen(ErrorDialog("Plugins that failed to load", message, details))


def _traceback(error: BaseException | None) -> str:
    if error is None:
        return ""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _toml(path: Path) -> Path:
    return path if path.suffix.lower() == ".toml" else path.with_suffix(".toml")


def _relative(path: str, folder: Path) -> str:
    """``path`` (absolute, or relative to the working folder) relative to ``folder``, for a recipe there."""
    try:
        return os.path.relpath(Path(path).expanduser().resolve(), folder)
    except ValueError:  # another drive (Windows)
        return path


def _relative_images(registry: Registry, effect: str, params: dict[str, Any], folder: Path) -> dict[str, Any]:
    eff = registry.effects.get(effect)
    if eff is None:
        return params
    out = dict(params)
    for p in eff.schema:  # images, init = a file, direction(L, 'v.npy')...
        if p.has_paths and p.name in out:
            out[p.name] = p.map_paths(out[p.name], lambda path: _relative(path, folder))
    return out
