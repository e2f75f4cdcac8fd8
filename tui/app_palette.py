"""The command palette (ctrl+p): the app's actions, weights and seed, "Add <effect>" for every effect and "Go to"
a field or a panel."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from gradfx.engine.params import WEIGHT_MODES

from .app_settings import WEIGHT_SUFFIXES
from .screens import suffix_list
from .widgets import ParamForm

if TYPE_CHECKING:
    from .app import GradfxApp


class GradfxCommands(Provider):
    """The command palette (ctrl+p): the main actions, and "Add <effect>" for every effect."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        app = cast("GradfxApp", self.app)
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
            ("Jobs", "background jobs: follow, open an output, cancel, resume, remove (f6)", app.action_jobs),
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
                     partial(app.focus_param, p.name)) for p in form.effect.schema
                    if form.step is None or form.step.applies(p, form.effect)]  # not a hidden field
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
