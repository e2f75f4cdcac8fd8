"""The TUI's model of a chain: steps, each an effect and the text the user typed per parameter.

Kept free of Textual so it is tested directly. Values stay as the user's text (or a bool / choice) until a
run or a recipe save, when each is coerced by its :class:`~gradfx.engine.params.Param`; a value that does not
coerce is an inline error in the form, not an exception.

Recipes are the chains' TOML format (``gradfx.engine.running.recipes``): one ``[[step]]`` table per step, holding
``effect`` and the parameters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradfx.engine.effect import Effect
from gradfx.engine.errors import GradfxError, ParameterError
from gradfx.engine.params import Param
from gradfx.engine.running import recipes
from gradfx.engine.running.plan import Step, resolve_params


@dataclass
class ChainStep:
    """One step: an effect name and the values the user set (text, or bool / choice values)."""

    effect: str
    values: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  #: a recipe step's own backbone, kept so a loaded recipe saves the same
    #: the model the effect's default follows the weights to on this machine (the app sets it from
    #: :func:`gradfx.engine.models.choice.followed_model`), and the effect's parameters that name the default model's
    #: layers (setting one keeps the default model, as a run does)
    follows: str | None = field(default=None, compare=False)
    layer_params: frozenset[str] = field(default=frozenset(), compare=False)
    #: the effect's own model, whose defaults (per model: deepdream's max_loss is 20 on inception_v3, not its
    #: base 15) a step that names none and follows nowhere gets
    own: str | None = field(default=None, compare=False)

    def copy(self) -> ChainStep:
        return ChainStep(self.effect, dict(self.values), self.model, self.follows, self.layer_params, self.own)

    def follow(self, model: str | None, effect: Effect | None) -> None:
        """Show (and compare against) ``model``'s defaults while the step names no model: the run will use it."""
        self.follows = model
        self.layer_params = frozenset(p.name for p in effect.schema if p.names_layers) if effect else frozenset()
        self.own = effect.model if effect else None

    @property
    def followed(self) -> str | None:
        """The model a run uses while the step names none, when it is not the effect's default: the one the
        default follows to, unless a layer-naming value keeps the default (as in a run)."""
        return None if self.layer_params & self.values.keys() else self.follows

    @property
    def defaults_model(self) -> str | None:
        """The model whose defaults the step's untouched parameters get in a run: the one it names, else the
        one it follows to, else the effect's own."""
        return self.model or self.followed or self.own

    def text(self, param: Param) -> Any:
        """What the form shows for ``param``: the user's value, else the default as text."""
        if param.name in self.values:
            return self.values[param.name]
        if param.kind == "bool":
            return bool(param.default_for(self.defaults_model))
        return param.format(param.default_for(self.defaults_model))

    def error(self, param: Param) -> str | None:
        """The message for a value that does not coerce, else None."""
        try:
            self._coerce(param)
        except ParameterError as exc:
            return str(exc)
        return None

    def _coerce(self, param: Param) -> Any:
        if param.name not in self.values:
            return param.coerce(param.default_for(self.defaults_model))
        value = self.values[param.name]
        if isinstance(value, str) and not value.strip():
            return param.coerce(None)  # an emptied field means "unset"; required ones say so
        return param.coerce(value)

    def _changed_value(self, param: Param) -> Any:
        """The coerced value if it differs from the default, else None; raises ParameterError."""
        if param.name not in self.values:
            return None
        value = self._coerce(param)
        return value if value != param.default_for(self.defaults_model) else None

    def applies(self, param: Param, effect: Effect) -> bool:
        """Whether ``param`` takes effect with the step's values (:meth:`Param.only_when`: style-transfer's
        ``lr`` with ``optimizer=adam``). A value that does not apply is neither shown nor passed nor checked;
        the step keeps it for when it applies again. A condition on a value that does not coerce holds."""
        values = {}
        for name, _ in param.applies_when:
            try:
                values[name] = self._coerce(effect.schema[name])
            except ParameterError:
                pass
        return param.applies(values)

    def _applying(self, effect: Effect) -> list[Param]:
        return [p for p in effect.schema if self.applies(p, effect)]

    def params(self, effect: Effect) -> dict[str, Any]:
        """The values that apply and differ from the defaults, coerced; raises ParameterError for the first
        bad one."""
        return {p.name: value for p in self._applying(effect) if (value := self._changed_value(p)) is not None}

    def changed(self, effect: Effect) -> int:
        """How many values a run would pass (or that do not validate): a value typed back to its default,
        or emptied, or one that does not apply, does not count."""
        return sum(1 for p in self._applying(effect)
                   if p.name in self.values and (self.error(p) or self._changed_value(p) is not None))

    def errors(self, effect: Effect) -> dict[str, str]:
        return {p.name: msg for p in self._applying(effect) if (msg := self.error(p))}

    def problems(self, effect: Effect) -> dict[str, str]:
        """What stops this step from running, by parameter name: every value that does not coerce; when
        all do, the first problem the run's own check finds (a file that does not exist, values the effect
        refuses together: :func:`gradfx.engine.running.plan.resolve_params`), under the parameter it names, or ``""``."""
        errors = self.errors(effect)
        if errors:
            return errors
        try:
            resolve_params(effect, self.params(effect))
        except GradfxError as exc:
            message = str(exc)
            return {next((p.name for p in effect.schema if f"parameter {p.name!r}" in message), ""): message}
        return {}


@dataclass
class LoadedRecipe:
    """A recipe as the TUI uses it: the steps, and the recipe's own input, seed and weights if it sets them.
    Image paths are absolute (resolved against the recipe's folder)."""

    steps: list[ChainStep]
    input: str | None = None
    seed: int | None = None
    weights: str | None = None


def load_recipe(path: str | os.PathLike, path_params: Mapping[str, Iterable[Param]] | None = None) -> LoadedRecipe:
    """Read a recipe (:func:`gradfx.engine.running.recipes.load_recipe`). ``path_params`` maps effect names to their
    parameters that hold file paths (``Param.has_paths``), whose relative paths are made absolute against the
    recipe's folder."""
    recipe = recipes.load_recipe(path)
    steps = [ChainStep(s.effect, dict(s.params), s.model or recipe.model) for s in recipe.steps]
    for step in steps:
        for param in (path_params or {}).get(step.effect, ()):
            if step.values.get(param.name) is not None:
                step.values[param.name] = param.map_paths(step.values[param.name], recipe.resolve)
        step.values = {k: _as_text(v) for k, v in step.values.items()}
    return LoadedRecipe(steps, recipe.resolve(recipe.input) if recipe.input else None, recipe.seed,
                        recipe.weights)


def _as_text(value: Any) -> Any:
    """A recipe value as the form holds it: bools stay bools, lists become comma-separated text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def save_recipe(path: str | os.PathLike, steps: Iterable[tuple[str, Mapping[str, Any], str | None]], *,
                input: str | None = None, seed: int | None = None, weights: str | None = None) -> Path:
    """Write ``(effect, params, model)`` steps as a recipe, atomically (:func:`gradfx.engine.running.recipes.save_recipe`)."""
    recipe = recipes.Recipe(steps=[Step(e, dict(p), m) for e, p, m in steps], input=input, seed=seed,
                            weights=weights)
    return Path(recipes.save_recipe(recipe, path))
