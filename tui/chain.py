"""The TUI's model of a chain: steps, each an effect and the text the user typed per parameter.

Kept free of Textual so it is tested directly. Values stay as the user's text (or a bool / choice) until a
run or a recipe save, when each is coerced by its :class:`~gradfx.engine.params.Param`; a value that does not
coerce is an inline error in the form, not an exception.

Recipes are the chains' TOML format: one ``[[step]]`` table per step, holding ``effect`` and the parameters.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradfx.engine.effect import Effect
from gradfx.engine.errors import ParameterError, RecipeError
from gradfx.engine.params import Param

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class ChainStep:
    """One step: an effect name and the values the user set (text, or bool / choice values)."""

    effect: str
    values: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  #: a recipe step's own backbone, kept so a loaded recipe saves the same

    def copy(self) -> ChainStep:
        return ChainStep(self.effect, dict(self.values), self.model)

    def text(self, param: Param) -> Any:
        """What the form shows for ``param``: the user's value, else the default as text."""
        if param.name in self.values:
            return self.values[param.name]
        if param.kind == "bool":
            return bool(param.default)
        return param.format(param.default)

    def error(self, param: Param) -> str | None:
        """The message for a value that does not coerce, else None."""
        try:
            self._coerce(param)
        except ParameterError as exc:
            return str(exc)
        return None

    def _coerce(self, param: Param) -> Any:
        if param.name not in self.values:
            return param.coerce(param.default)
        value = self.values[param.name]
        if isinstance(value, str) and not value.strip():
            return param.coerce(None)  # an emptied field means "unset"; required ones say so
        return param.coerce(value)

    def params(self, effect: Effect) -> dict[str, Any]:
        """The values that differ from the defaults, coerced; raises ParameterError for the first bad one."""
        out: dict[str, Any] = {}
        for p in effect.schema:
            if p.name not in self.values:
                continue
            value = self._coerce(p)
            if value != p.default and value is not None:
                out[p.name] = value
        return out

    def errors(self, effect: Effect) -> dict[str, str]:
        return {p.name: msg for p in effect.schema if (msg := self.error(p))}


@dataclass
class LoadedRecipe:
    """A recipe as the TUI uses it: the steps, and the recipe's own input, seed and weights if it sets them.
    Image paths are absolute (resolved against the recipe's folder)."""

    steps: list[ChainStep]
    input: str | None = None
    seed: int | None = None
    weights: str | None = None


def _recipes() -> Any:
    try:
        from gradfx.engine import recipes
    except ImportError:  # the chains module is not there (an older engine): read and write the TOML here
        return None
    return recipes


def load_recipe(path: str | os.PathLike, image_params: Mapping[str, Iterable[str]] | None = None) -> LoadedRecipe:
    """Read a recipe. ``image_params`` maps effect names to their image parameters, whose relative paths
    are made absolute against the recipe's folder."""
    path = Path(path)
    recipes = _recipes()
    if recipes is not None:
        recipe = recipes.load_recipe(path)
        steps = [ChainStep(s.effect, dict(s.params), s.model) for s in recipe.steps]
        out = LoadedRecipe(steps, recipe.resolve(recipe.input) if recipe.input else None, recipe.seed,
                           recipe.weights)
    else:
        out = _load_toml(path)
    base = path.resolve().parent
    for step in out.steps:
        for name in (image_params or {}).get(step.effect, ()):
            if name in step.values:
                value = step.values[name]
                items = value if isinstance(value, (list, tuple)) else str(value).split(",")
                step.values[name] = ",".join(str(base / Path(v.strip()).expanduser()) for v in items if v.strip())
        step.values = {k: _as_text(v) for k, v in step.values.items()}
    return out


def _load_toml(path: Path) -> LoadedRecipe:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"recipe {str(path)!r} cannot be read ({exc.strerror or exc}); check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from None
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise RecipeError(f"{path}: no [[step]] tables; a recipe lists its effects as [[step]] with effect = ...")
    out = []
    for i, table in enumerate(steps, 1):
        table = dict(table) if isinstance(table, Mapping) else {}
        effect = table.pop("effect", None)
        model = table.pop("model", None)
        if not isinstance(effect, str) or not effect:
            raise RecipeError(f"{path}: step {i}: needs effect = \"NAME\"")
        out.append(ChainStep(effect, table, model))
    input_ = data.get("input")
    return LoadedRecipe(out, str(path.resolve().parent / input_) if isinstance(input_, str) else None,
                        data.get("seed"), data.get("weights"))


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def recipe_text(steps: Iterable[tuple[str, Mapping[str, Any], str | None]], *, input: str | None = None,
                seed: int | None = None, weights: str | None = None) -> str:
    """The TOML for ``(effect, params, model)`` steps (used when the engine has no recipes module)."""
    lines = ["# gradfx recipe: each [[step]] runs on the previous step's output"]
    for key, value in (("input", input), ("seed", seed), ("weights", weights)):
        if value is not None:
            lines.append(f"{key} = {_toml(value)}")
    lines.append("")
    for effect, params, model in steps:
        lines.append("[[step]]")
        lines.append(f"effect = {_toml(effect)}")
        if model:
            lines.append(f"model = {_toml(model)}")
        lines += [f"{name} = {_toml(value)}" for name, value in params.items()]
        lines.append("")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def save_recipe(path: str | os.PathLike, steps: Iterable[tuple[str, Mapping[str, Any], str | None]], *,
                input: str | None = None, seed: int | None = None, weights: str | None = None) -> Path:
    """Write a recipe atomically, in the chains' format."""
    steps = [(e, {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}, m) for e, p, m in steps]
    recipes = _recipes()
    if recipes is not None:
        from gradfx.engine.api import Step

        recipe = recipes.Recipe(steps=[Step(e, p, m) for e, p, m in steps], input=input, seed=seed,
                                weights=weights)
        return Path(recipes.save_recipe(recipe, path))
    from gradfx.engine.imageio import atomic_write

    text = recipe_text(steps, input=input, seed=seed, weights=weights)
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
