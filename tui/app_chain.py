"""Editing the chain: adding effects from the browser, removing, duplicating and moving steps, the form that
follows the highlighted step, file pickers for its image parameters. A mixin of
:class:`~gradfx.tui.app.GradfxApp`.

The lists' messages are handled by name (``on_option_list_...``), not with ``@on``: Textual collects ``@on``
handlers only from classes built by its own metaclass, which a mixin is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.widgets import OptionList

from gradfx.engine.effect import Effect
from gradfx.engine.registry import BUILTIN

from .chain_model import ChainStep
from .paths import short_path
from .screens import FilePicker
from .widgets import ChainView, ParamForm


class ChainMixin:
    """The chain's steps (``self.chain``), the highlighted one (``self.current``) and its form."""

    def add_step(self, effect: str, values: dict[str, Any] | None = None) -> None:
        self.chain.append(ChainStep(effect, dict(values or {})))
        self.current = len(self.chain) - 1
        self.run_worker(self._refresh_chain(), group="chain")
        eff = self.registry.effects.get(effect)
        if eff is not None and eff.needs_input is False and len(self.chain) > 1:
            self.notify(f"{effect} makes its image from nothing: it ignores the output of the step(s) before "
                        "it, so a run refuses it there. Put it first, or remove them (x on the chain).",
                        title="Input ignored", severity="warning", timeout=10)

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

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "effects":
            await self._effect_highlighted(event)
        elif event.option_list.id == "chain":
            await self._step_highlighted(event)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "effects":
            self._effect_chosen(event)
        elif event.option_list.id == "chain":
            self._step_selected(event)

    def _effect_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.add_step(event.option.id)

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

    async def _step_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if 0 <= event.option_index < len(self.chain) and event.option_index != self.current:
            self.current = event.option_index
            await self._show_form()

    def _step_selected(self, event: OptionList.OptionSelected) -> None:
        self.screen.remove_class("-show-run")
        self.call_after_refresh(self._focus_form)

    def _focus_form(self) -> None:
        fields = [w for w in self.query_one(ParamForm).query("Input, Select, Checkbox") if w.focusable]
        if fields:
            fields[0].focus()

    async def on_chain_view_edit(self, event: ChainView.Edit) -> None:
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

    def on_param_form_changed(self, event: ParamForm.Changed) -> None:
        if 0 <= event.index < len(self.chain):
            self.query_one(ChainView).show(self.chain, self._effects(), self.current)
            self._forget_fix_first()

    def on_param_form_browse(self, event: ParamForm.Browse) -> None:
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

    def focus_param(self, name: str) -> None:
        """Jump to a parameter's field in the form (the palette's "Go to NAME")."""
        self.screen.remove_class("-show-run")
        fields = self.query_one(ParamForm).query(f"#param-{name}")
        if fields:
            fields.first().focus()
