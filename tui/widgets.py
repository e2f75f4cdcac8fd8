"""The main screen's panels: effect browser, chain, parameter form, run panel and preview."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, OptionList, ProgressBar, Select, Sparkline, Static
from textual.widgets.option_list import Option

from gradfx.engine.effect import Effect
from gradfx.engine.params import Param
from gradfx.engine.progress import ProgressEvent

from .chain_model import ChainStep
from .preview import HalfBlocks


class _StopAtEnds(OptionList):
    """Up on the first option and down on the last stay there, as in the file picker's tree (OptionList wraps
    round to the other end)."""

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_cursor_down(self) -> None:
        self._move(1)

    def _move(self, delta: int) -> None:
        if self.highlighted is None:
            super().action_cursor_down() if delta > 0 else super().action_cursor_up()
            return
        for i in range(self.highlighted + delta, self.option_count if delta > 0 else -1, delta):
            if not self.get_option_at_index(i).disabled:
                self.highlighted = i
                return


class EffectBrowser(_StopAtEnds):
    """Every registered effect (third-party ones tagged with their plugin), with its summary. Typing the
    start of a name jumps to it; enter adds the highlighted effect to the chain."""

    BINDINGS = [Binding("enter", "select", "Add")]
    _typed = ""
    _typed_at = 0.0

    def notify_style_update(self) -> None:
        self._clear_caches()  # summaries wrap in the wide layout, not in the narrow: lines cached for one were kept
        super().notify_style_update()

    def on_key(self, event: events.Key) -> None:
        char = event.character
        if not char or not char.isprintable() or char == " " or len(char) != 1 or char.isdigit():
            return  # digits are the panel keys
        now = time.monotonic()
        self._typed = (self._typed if now - self._typed_at < 1.0 else "") + char.lower()
        self._typed_at = now
        for i in range(self.option_count):
            if (self.get_option_at_index(i).id or "").startswith(self._typed):
                self.highlighted = i
                break
        event.stop()
        event.prevent_default()

    def set_effects(self, effects: Sequence[Effect], plugins: dict[str, str], builtin: str) -> None:
        options = []
        for eff in effects:
            text = Text(eff.name, style="bold")  # wrapped or cut by the CSS (text-wrap), per layout
            plugin = plugins.get(eff.name)
            if plugin and plugin != builtin:
                text.append(f" [{plugin}]", style="italic cyan")
            if not eff.needs_input:
                text.append(" (no input)", style="dim")
            text.append("\n" + eff.summary.strip().splitlines()[0], style="dim")
            options.append(Option(text, id=eff.name))
        self.set_options(options)
        if options:
            self.highlighted = 0


class ChainView(_StopAtEnds):
    """The steps of the chain, in order. The highlighted step is the one the form edits."""

    BINDINGS = [  # only Remove in the footer: with all four, ^s, ^o, f4 and f1 fell off it at 80 columns (f1 lists them)
        Binding("x,delete", "remove", "Remove"),
        Binding("d", "duplicate", "Duplicate", show=False),
        Binding("shift+up,[", "move(-1)", "Move up", show=False),
        Binding("shift+down,]", "move(1)", "Move down", show=False),
    ]

    class Edit(Message):
        """Ask the app to remove, duplicate or move the highlighted step."""

        def __init__(self, op: str, index: int, delta: int = 0) -> None:
            super().__init__()
            self.op, self.index, self.delta = op, index, delta

    def show(self, steps: Sequence[ChainStep], effects: Sequence[Effect | None], highlight: int | None) -> None:
        """List ``steps`` (``effects`` holds each one's effect, None if unknown): how many values each sets,
        and a red ✗ where one does not validate (a value, a missing file) or the effect is unknown."""
        if not steps:
            self.set_options([Option(Text("empty: choose an effect on the left and press enter", style="dim"),
                                     disabled=True)])
            return
        options = []
        for i, (step, eff) in enumerate(zip(steps, effects, strict=True), 1):
            # the marker right after the number, and one line a step: at the end it wrapped onto a line of
            # its own when the name and "N set" filled the panel
            text = Text(f"{i}. ", style="dim", no_wrap=True, overflow="ellipsis")
            bad = eff is None or bool(step.problems(eff))
            if bad:
                text.append("✗ ", style="bold red")
            text.append(step.effect, style="bold")
            changed = len(step.values) if eff is None else step.changed(eff)
            if step.defaults_model:  # named, or the one the default model follows the weights to
                text.append(f" ({step.defaults_model})", style="dim")
            if changed:
                text.append(f"  {changed} set", style="dim")
            options.append(Option(text))
        self.set_options(options)
        if options:
            self.highlighted = min(max(highlight or 0, 0), len(options) - 1)

    def _edit(self, op: str, delta: int = 0) -> None:
        if self.highlighted is not None:
            self.post_message(self.Edit(op, self.highlighted, delta))

    def action_remove(self) -> None:
        self._edit("remove")

    def action_duplicate(self) -> None:
        self._edit("duplicate")

    def action_move(self, delta: int) -> None:
        self._edit("move", delta)


#: Input actions that edit the text or move the cursor: run in order with the typed characters
_EDITING = ("cursor_", "delete_", "home", "end", "select_all", "cut", "paste")


class TextField(Input):
    """An Input whose editing keys (ctrl+u, backspace, arrows...) take effect in order with typed text.

    Textual inserts a typed character as soon as the Input gets its key, but runs a bound key (ctrl+u:
    delete_left_all) only once the key has bubbled up to the app; in a burst of keys (a fast typist, a
    paste-like send, a busy machine) the characters typed after ctrl+u were inserted first and then deleted
    with it. Upstream: Textualize/textual#6605 (open; fix proposed in #6631). Until then the field runs its
    own editing bindings as it receives them. It also shows the start of a long value when left."""

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and binding.action.startswith(_EDITING):
                event.stop()
                event.prevent_default()
                self._restart_blink()
                await self.run_action(binding.action)
                return
        await super()._on_key(event)

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.cursor_position = 0  # a long path shows its start (its name is at the end, but so is the rest)


class ImageField(TextField):
    """An image-path input; enter on an empty field opens the file picker."""


class ParamForm(VerticalScroll):
    """A form generated from an effect's parameter schema; values are checked as they are typed."""

    BINDINGS = [Binding("escape", "leave", "Back to the chain", show=False)]

    def action_leave(self) -> None:
        """Escape in the form goes back to the chain (16 shift+tabs before); during a run it is the app's
        cancel."""
        if getattr(self.app, "running", False):
            raise SkipAction()
        self.app.query_one(ChainView).focus()

    class Changed(Message):
        def __init__(self, index: int, name: str) -> None:
            super().__init__()
            self.index, self.name = index, name

    class Browse(Message):
        """Ask the app to open a file picker for an image parameter."""

        def __init__(self, index: int, param: Param) -> None:
            super().__init__()
            self.index, self.param = index, param

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step: ChainStep | None = None
        self.effect: Effect | None = None
        self.index = -1
        #: the effect whose "about" the form shows while the user browses effects, else None
        self.about: Effect | None = None
        self.can_focus = False
        self._rebuilding = asyncio.Lock()

    async def show(self, index: int, step: ChainStep | None, effect: Effect | None) -> None:
        """Rebuild the form for ``step`` (``effect``), or the empty-chain hint when ``step`` is None."""
        self.step, self.effect, self.index, self.about = step, effect, index, None
        async with self._rebuilding:  # one rebuild at a time: interleaved ones mounted into removed widgets
            await self._show(index, step, effect)

    async def _show(self, index: int, step: ChainStep | None, effect: Effect | None) -> None:
        await self.remove_children()
        if step is None or effect is None:
            self.border_title = "Parameters"
            await self.mount(Static("Add an effect to the chain: choose one on the left and press enter.",
                                    classes="empty"))
            return
        self.border_title = f"Step {index + 1}: {effect.name}"
        rows: list[Widget] = [Static(effect.summary, classes="summary"),
                              Static("", id="step-error", classes="param-error", markup=False)]
        if not len(effect.schema):
            rows.append(Static("This effect has no parameters.", classes="empty"))
        for p in effect.schema:
            rows.append(self._row(p, step))
        rows.append(self._model_row(effect, step))
        await self.mount_all(rows)
        beside = [p.name for p in effect.schema if p.kind != "bool" and not p.picks_image]
        width = min(max(map(len, beside), default=4) + 2, 20)
        for label in self.query(".param-name").exclude(".param-above"):
            label.styles.width = width
        self._show_errors()
        self.scroll_home(animate=False)  # a new step's form from its top, not where the last one was scrolled
    async def show_about(self, effect: Effect, plugin: str | None = None, follows: str | None = None) -> None:
        """What an effect does and what it takes, while the user browses effects; ``follows`` is the model
        its default follows the weights to here (its defaults are the ones shown)."""
        self.step, self.effect, self.index, self.about = None, None, -1, effect
        async with self._rebuilding:
            await self._show_about(effect, plugin, follows)

    async def _show_about(self, effect: Effect, plugin: str | None, follows: str | None) -> None:
        await self.remove_children()
        self.border_title = f"About {effect.name}"
        text = Text()
        text.append(effect.summary.strip() + "\n\n")
        if plugin:
            text.append("plugin: ", style="dim")
            text.append(plugin + "\n")
        text.append("model: ", style="dim")
        text.append((follows or effect.model) + ("" if effect.needs_input else "   (makes an image from nothing)"))
        if follows:
            text.append(f"\n  {effect.model}, its default, has no trained weights here: runs on {follows} "
                        f"(trained weights) with these {follows} defaults; choosing a model keeps it", style="dim")
        text.append("\n\n")
        for p in effect.schema:
            text.append(p.name, style="bold")
            default = p.format(p.default_for(follows))
            text.append(f"  {p.kind}" + (f" = {default}" if default else ""), style="dim")
            text.append(f"\n  {p.help}\n" if p.help else "\n")
        text.append("\nenter adds it to the chain · type a name to jump to it", style="italic")
        await self.mount(Static(text, classes="about"))

    def _model_row(self, effect: Effect, step: ChainStep) -> Widget:
        """The step's backbone: a choice when the effect names the models it works with, else free text."""
        if effect.models:
            field: Widget = Select([(m, m) for m in effect.models], value=step.defaults_model or effect.model,
                                   allow_blank=False, id="step-model", compact=True)
            help_text = f"backbone network (works with {', '.join(effect.models)})"
        else:
            default = step.defaults_model or effect.model
            whose = "the default here" if step.followed else "the effect's default"
            field = TextField(step.model or "", placeholder=f"{default} ({whose})", id="step-model",
                              compact=True)
            help_text = f"backbone network; empty: {default}; 'gradfx models' lists them"
        if step.followed and not step.model:
            help_text += (f"; {effect.model}, the effect's default, has no trained weights here, so the run uses "
                          f"{step.defaults_model} and the defaults above are its")
        return Vertical(Horizontal(Label("model", classes="param-name"), field, classes="param-line"),
                        _under(Static(help_text, classes="param-help", markup=False)), classes="param-row")

    def _set_model(self, value: str) -> None:
        if self.step is None or self.effect is None:
            return
        model = value.strip() or None
        default = self.step.followed or self.effect.model  # what runs while the step names no model
        if self.step.model is None and model in (None, default):
            return  # the default echoed back by the selector
        # the effect's own default, chosen while the default follows the weights elsewhere, is kept as named
        self.step.model = None if model == default else model
        self.post_message(self.Changed(self.index, "model"))

    def _row(self, p: Param, step: ChainStep) -> Widget:
        value = step.text(p)
        wid = f"param-{p.name}"
        if p.kind == "bool":
            field: Widget = Checkbox(p.name, bool(value), id=wid, compact=True)
        elif p.kind == "choice":
            field = Select([(c, c) for c in p.choices or ()], value=value, allow_blank=False, id=wid,
                           compact=True)
        elif p.picks_image:
            field = ImageField(value, placeholder="paths; enter: pick" if p.kind == "images"
                               else "enter: pick a file", id=wid, compact=True)
        else:
            field = TextField(value, placeholder=p.allowed(), id=wid, compact=True)
        field.tooltip = p.help
        numeric = p.kind in ("int", "float", "floats") and (p.min is not None or p.max is not None)
        help_text = p.help + (f" ({p.allowed()})" if numeric or not p.help else "")
        if p.required:
            help_text += " (required)"
        lines: list[Widget] = []
        if p.picks_image:  # a path needs the width: its name goes above it, the Browse… button beside it
            lines += [Label(p.name, classes="param-name param-above"),
                      Horizontal(field, Button("Browse…", id=f"browse-{p.name}", classes="browse", compact=True),
                                 classes="param-line")]
        else:
            lines.append(Horizontal(Label(p.name if p.kind != "bool" else "", classes="param-name"), field,
                                    classes="param-line"))
        return Vertical(*lines, _under(Static(help_text, classes="param-help", markup=False)),
                        _under(Static("", classes="param-error", id=f"error-{p.name}", markup=False)),
                        classes="param-row" + (" -path" if p.picks_image else ""))

    def _param(self, widget_id: str | None, prefix: str = "param-") -> Param | None:
        if self.effect is None or not widget_id or not widget_id.startswith(prefix):
            return None
        name = widget_id[len(prefix):]
        return self.effect.schema[name] if name in self.effect.schema else None

    def _show_errors(self) -> None:
        """Each field's problem in red under it (a value that does not coerce, a file that does not exist,
        values that do not go together), and one that names no parameter under the summary."""
        found = self.query("#step-error")
        if self.step is None or self.effect is None or not found:
            return  # between two forms: the rebuild shows them when it is done
        problems = self.step.problems(self.effect)
        general = found.first(Static)
        general.update("✗ " + problems.get("", ""))
        general.display = "" in problems
        for p in self.effect.schema:
            message = problems.get(p.name)
            label = self.query_one(f"#error-{p.name}", Static)
            label.update("✗ " + _short(message, p) if message else "")
            label.display = bool(message)
            if label.parent is not None:
                label.parent.display = bool(message)
            self.query_one(f"#param-{p.name}").set_class(bool(message), "-invalid-value")

    def _current(self, widget: Widget) -> bool:
        """Whether ``widget`` is a field of the form as it is now: a removed form's widget can post its
        change after the form has moved on to another step (its value then went into that step)."""
        return widget.is_attached and not self._rebuilding.locked()

    def _set(self, widget: Widget, value: Any) -> None:
        p = self._param(widget.id)
        if p is None or self.step is None or not self._current(widget):
            return
        if value == self.step.text(p) and p.name not in self.step.values:
            return  # the initial value echoed back by the widget: not a user change
        self.step.values[p.name] = value
        self._show_errors()
        self.post_message(self.Changed(self.index, p.name))

    @on(Input.Changed)
    def _input(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "step-model" and self._current(event.input):
            self._set_model(event.value)
        elif event.input.id != "step-model":
            self._set(event.input, event.value)

    @on(Checkbox.Changed)
    def _checkbox(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._set(event.checkbox, event.value)

    @on(Select.Changed)
    def _select(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL:
            return
        if event.select.id == "step-model" and self._current(event.select):
            self._set_model(str(event.value))
        elif event.select.id != "step-model":
            self._set(event.select, event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        p = self._param(event.input.id)
        if p is not None and p.picks_image and not event.value.strip():
            event.stop()
            self.post_message(self.Browse(self.index, p))

    @on(Button.Pressed, ".browse")
    def _browse(self, event: Button.Pressed) -> None:
        event.stop()
        p = self._param(event.button.id, "browse-")
        if p is not None:
            self.post_message(self.Browse(self.index, p))

    def set_value(self, name: str, value: str) -> None:
        """Set a field's text from outside (a picked file): the change is validated like typing."""
        widget = self.query_one(f"#param-{name}", Input)
        widget.value = value
        widget.focus()


def _under(widget: Widget) -> Widget:
    """A help or error line under a field, across the form (CSS indents it a little)."""
    return Horizontal(widget, classes="param-sub")


def _short(message: str, p: Param) -> str:
    """Drop the "effect 'x': parameter 'y': " prefix: the form already says where."""
    for marker in (f"parameter {p.name!r}: ", f"parameter {p.name!r} "):
        if marker in message:
            return message.split(marker, 1)[1]
    return message


class Preview(Widget):
    """The current image: half-cell blocks everywhere, or a textual-image widget where the terminal draws
    real pixels (Kitty graphics, Sixel)."""

    image: reactive[np.ndarray | None] = reactive(None, always_update=True, layout=False)

    def __init__(self, graphics: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphics = graphics
        self._cache: tuple[int, int, int, HalfBlocks] | None = None
        self._pixels: Any = None

    def compose(self) -> ComposeResult:
        if self.graphics:
            from textual_image.widget import Image as PixelImage

            self._pixels = PixelImage(id="pixels")
            yield self._pixels

    def watch_image(self, image: np.ndarray | None) -> None:
        self._cache = None
        if self._pixels is not None:
            from PIL import Image

            self._pixels.image = None if image is None else Image.fromarray(image)
        self.refresh()

    def render(self) -> Any:
        if self.graphics:
            return ""
        image = self.image
        if image is None:
            return Text("no image yet: ctrl+o opens one", style="dim", justify="center")
        w, h = self.content_size.width, self.content_size.height
        key = (id(image), w, h)
        if self._cache is None or self._cache[:3] != key:
            self._cache = (*key, HalfBlocks(image, w, h))
        return self._cache[3]


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


#: the run panel's bar counts in thousandths of the whole run
BAR_TOTAL = 1000
_CHAIN_STEP = re.compile(r"step (\d+)/(\d+) ")


def chain_step(event: ProgressEvent) -> tuple[int, int] | None:
    """Which chain step ``event`` comes from, and of how many: ``run_chain`` names it in the stage (``step 2/3
    deepdream · octave 1/3 ...``) and counts ``total_step``, ``eta`` and the losses within that step. None
    outside a chain."""
    match = _CHAIN_STEP.match(event.stage)
    return None if match is None else (int(match[1]), int(match[2]))


def run_fraction(event: ProgressEvent) -> float:
    """How far the whole run is: step 2 of 2 starts at 50%."""
    step = chain_step(event)
    if step is None:
        return event.fraction
    index, count = step
    return (index - 1 + event.fraction) / max(count, 1)


_STEP_AND_EFFECT = re.compile(r"step (\d+)/(\d+) (\S+) · ")
_STAGE = re.compile(r"(?P<label>.*) (?P<i>\d+)/(?P<n>\d+) \((?P<size>\d+x\d+)\)$")


def describe(event: ProgressEvent) -> tuple[str, str]:
    """(what runs, where it is) for the status line, each said once: ``("step 2/3 deepdream", "octave 2/3
    (448x336)")``; a one-step chain and a single stage say only the effect and the size (the engine's stage
    text reads ``step 1/1 feature-vis · feature-vis 1/1 (224x224)``)."""
    head, rest = "", event.stage
    match = _STEP_AND_EFFECT.match(rest)
    if match:
        head = match[0].removesuffix(" · ") if int(match[2]) > 1 else match[3]
        rest = rest[match.end():]
    stage = _STAGE.match(rest)
    if stage:
        rest = stage["size"] if stage["n"] == "1" else f"{stage['label']} {stage['i']}/{stage['n']} ({stage['size']})"
    return head, rest


def eta(event: ProgressEvent, start: tuple[float, int]) -> float | None:
    """Seconds left in the running step, from the time per optimisation step since ``start`` = (elapsed,
    total_step) of its first event: the first step also builds and traces the model (seconds), which the
    engine's own ETA spreads over every step left (0:37 said for an 8 s run). None until a second step."""
    elapsed, done = start
    if event.total_step <= done or event.total_steps <= 0:
        return None
    return (event.elapsed - elapsed) / (event.total_step - done) * max(event.total_steps - event.total_step, 0)


class RunPanel(Vertical):
    """Progress bar, effect / stage / step / ETA / loss line and the loss sparkline."""

    def compose(self) -> ComposeResult:
        yield Static("ready: ctrl+r runs the chain", id="status", markup=False)
        yield ProgressBar(total=1, show_eta=False, id="bar")
        yield Sparkline([], id="losses", summary_function=max)

    def reset(self, text: str) -> None:
        self.query_one("#bar", ProgressBar).update(total=1, progress=0)
        self.query_one("#losses", Sparkline).data = []
        self.border_subtitle = ""
        self._starts: dict[Any, tuple[float, int]] = {}
        self.status(text)

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def show_event(self, event: ProgressEvent, losses: Sequence[float]) -> None:
        """``losses``: the current chain step's (steps' losses differ by orders of magnitude)."""
        bar = self.query_one("#bar", ProgressBar)
        bar.update(total=BAR_TOTAL, progress=round(run_fraction(event) * BAR_TOTAL))
        step = chain_step(event)
        starts = getattr(self, "_starts", {})
        start = starts.setdefault(step, (event.elapsed, event.total_step))
        self._starts = starts
        head, where = describe(event)
        of_step = f" for step {step[0]}/{step[1]}" if step and step[1] > 1 else ""  # the later steps' time is unknown
        parts = [head, where, f"step {event.step}/{event.steps}", f"ETA {format_seconds(eta(event, start))}{of_step}",
                 f"loss {event.loss:.4g}"]
        self.status(" · ".join(part for part in parts if part))
        finite = [x for x in losses if np.isfinite(x)]
        self.query_one("#losses", Sparkline).data = finite[-200:]
        self.border_subtitle = f"loss{of_step}"


def short_path(path: str | Path | None, width: int = 40) -> str:
    if path is None:
        return "none"
    resolved = Path(path).resolve()  # normalised: not /tmp/x/../style.png
    try:
        text = str(resolved.relative_to(Path.cwd()))
    except ValueError:
        text = str(resolved)
    return text if len(text) <= width else "…" + text[-(width - 1):]
