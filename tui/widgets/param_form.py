"""The parameter form: generated from an effect's parameter schema, checked as values are typed; and the
"about" view of an effect while the user browses effects."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from gradfx.engine.effect import Effect
from gradfx.engine.params import Param

from ..chain_model import ChainStep
from .fields import ImageField, TextField
from .lists import ChainView


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
        #: parameter -> the defaults :meth:`_model_changed` put in its field that it has not echoed back yet
        self._echoes: dict[str, list[Any]] = {}

    async def show(self, index: int, step: ChainStep | None, effect: Effect | None) -> None:
        """Rebuild the form for ``step`` (``effect``), or the empty-chain hint when ``step`` is None."""
        self.step, self.effect, self.index, self.about = step, effect, index, None
        async with self._rebuilding:  # one rebuild at a time: interleaved ones mounted into removed widgets
            await self._show(index, step, effect)

    async def _show(self, index: int, step: ChainStep | None, effect: Effect | None) -> None:
        await self.remove_children()
        self._echoes.clear()
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
        if effect.model is not None:  # None: it reads no backbone (it runs networks of its own)
            rows.append(self._model_row(effect, step))
        await self.mount_all(rows)
        beside = [p.name for p in effect.schema if p.kind != "bool" and not p.picks_image]
        width = min(max(map(len, beside), default=4) + 2, 20)
        for label in self.query(".param-name").exclude(".param-above"):
            label.styles.width = width
        self._show_state()
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
        text.append((follows or effect.model or f"none: it runs {', '.join(effect.networks)}")
                    + ("" if effect.needs_input else "   (makes an image from nothing)"))
        if follows:
            text.append(f"\n  {effect.model}, its default, has no trained weights here: runs on {follows} "
                        f"(trained weights) with these {follows} defaults; choosing a model keeps it", style="dim")
        text.append("\n\n")
        for p in effect.schema:
            text.append(p.name, style="bold")
            default = p.format(p.default_for(follows or effect.model))
            text.append(f"  {p.kind}" + (f" = {default}" if default else "")
                        + (f" · only with {p.condition()}" if p.applies_when else ""), style="dim")
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
        before = self.step.defaults_model
        self.step.model = None if model == default else model
        self._model_changed(before)
        self._show_state()
        self.post_message(self.Changed(self.index, "model"))

    def _model_changed(self, before: str | None) -> None:
        """After a change: when the step now runs on another model (one was chosen, or a value naming layers
        keeps the effect's default), the untouched fields show that model's defaults, which can change what
        applies (style-transfer's optimizer is L-BFGS on VGG16, Adam on VGG19). Their widgets echo the new
        values back, which :meth:`_set` does not take for the user's (even when the model has changed again
        by the time the echo comes: keys typed in a burst)."""
        if self.step is None or self.effect is None or self.step.defaults_model == before:
            return
        for p in self.effect.schema:
            if p.name not in self.step.values:
                field: Any = self.query_one(f"#param-{p.name}")  # an Input, a Select or a Checkbox
                value = self.step.text(p)
                if field.value != value:  # (setting the value it has sends nothing back)
                    self._echoes.setdefault(p.name, []).append(value)
                    field.value = value

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
                        classes="param-row" + (" -path" if p.picks_image else ""), id=f"row-{p.name}")

    def _param(self, widget_id: str | None, prefix: str = "param-") -> Param | None:
        if self.effect is None or not widget_id or not widget_id.startswith(prefix):
            return None
        name = widget_id[len(prefix):]
        return self.effect.schema[name] if name in self.effect.schema else None

    def _show_state(self) -> None:
        """Only the fields that apply (:meth:`ChainStep.applies`: Adam's ``lr`` is hidden while the
        optimizer is L-BFGS); each one's problem in red under it (a value that does not coerce, a file that
        does not exist, values that do not go together), and one that names no parameter under the summary."""
        found = self.query("#step-error")
        if self.step is None or self.effect is None or not found:
            return  # between two forms: the rebuild shows them when it is done
        problems = self.step.problems(self.effect)
        general = found.first(Static)
        general.update("✗ " + problems.get("", ""))
        general.display = "" in problems
        for p in self.effect.schema:
            self.query_one(f"#row-{p.name}").display = self.step.applies(p, self.effect)
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
        echoes = self._echoes.get(p.name, [])
        if value in echoes:  # a model's default that _model_changed put there
            echoes.remove(value)
            return
        if value == self.step.text(p) and p.name not in self.step.values:
            return  # the initial value echoed back by the widget: not a user change
        before = self.step.defaults_model
        self.step.values[p.name] = value
        self._model_changed(before)
        self._show_state()
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
