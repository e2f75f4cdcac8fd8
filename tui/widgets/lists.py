"""The left column's lists: the effect browser and the chain."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.css.styles import RulesMap
from textual.message import Message
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from gradfx.engine.effect import Effect

from ..chain_model import ChainStep


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


class OneLine(Visual):
    """An option's text on one line at any width: the first of ``choices`` that fits, else the last one cut
    with an ellipsis. A chain step "2. style-transfer (vgg16)  1 set" wrapped "set" onto a second line in the
    chain panel at 80 columns; there it now drops the model, and is cut only if that is not enough. The width
    is the list's when it renders, so a resize or a scroll bar is taken into account."""

    def __init__(self, *choices: Text) -> None:
        self.choices = [Content.from_rich_text(choice) for choice in choices]

    def __str__(self) -> str:
        return str(self.choices[0])

    def fitted(self, width: int) -> Content:
        fits = [c for c in self.choices if c.cell_length <= width]
        return fits[0] if fits else self.choices[-1].truncate(max(width, 1), ellipsis=True)

    def render_strips(self, width: int, height: int | None, style: Style, options: RenderOptions) -> list[Strip]:
        return self.fitted(width).render_strips(width, height, style, options)

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return self.choices[0].get_optimal_width(rules, container_width)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return 1


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
            # the marker right after the number: at the end it wrapped onto a line of its own
            text = Text(f"{i}. ", style="dim")
            if eff is None or step.problems(eff):
                text.append("✗ ", style="bold red")
            text.append(step.effect, style="bold")
            changed = len(step.values) if eff is None else step.changed(eff)
            count = Text(f"  {changed} set" if changed else "", style="dim")
            # the model: named, or the one the default model follows the weights to (the form says it too)
            model = Text(f" ({step.defaults_model})" if step.defaults_model else "", style="dim")
            options.append(Option(OneLine(text + model + count, text + count)))
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
