"""Chain recipes: an ordered list of effects in a TOML file, run by ``gradfx chain``, the API and the TUI.

::

    # dream.toml
    input = "photo.jpg"          # optional; the command line's INPUT overrides it
    seed = 1                     # optional (default 0)
    weights = "auto"             # optional: auto, imagenet, random or a weights file (relative to this file)
    model = "vgg19"              # optional: the model of every step that names none

    [[step]]
    effect = "style-transfer"
    style = "painting.jpg"       # file paths resolve relative to this file (also init = "x.png" and
                                 # feature-vis's direction(L, 'v.npy'))
    steps = 40

    [[step]]
    effect = "deepdream"
    model = "vgg16"              # a step's own model
    steps = 10

Each ``[[step]]`` table holds ``effect``, optionally ``model``, and the effect's parameters with the names
``gradfx show EFFECT`` lists. Each step's output is the next one's input. The whole recipe is checked
(TOML, keys, effects, parameters, image files) before any compute and without importing TensorFlow; an error
names the file, the step and the parameter.

Every file a parameter names (:meth:`~gradfx.engine.params.Param.map_paths`) resolves against the recipe's
folder, in :func:`gradfx.engine.running.plan.resolve_params`, as image parameters do; the command line's resolve against the
working folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..effect import Effect
from ..errors import ImageError, ParameterError, RecipeError, suggest
from ..images import atomic
from ..images.values import is_image_object
from ..models.weights import is_weights_file
from ..progress import CancelToken, ProgressCallback
from ..registry import Registry, get_registry
from .api import Result, Step
from .execute import execute
from .plan import Plan, check_seed, draft, plan

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: top-level keys a recipe may have (besides ``step``)
TOP_KEYS = ("name", "description", "input", "seed", "weights", "model")
#: keys of a step table that are not effect parameters


@dataclass
class Recipe:
    """A parsed recipe. ``base_dir`` is where relative image paths resolve (the recipe file's folder)."""

    steps: list[Step]
    input: str | None = None
    seed: int | None = None
    weights: str | None = None
    model: str | None = None
    name: str | None = None
    description: str | None = None
    base_dir: Path | None = None
    source: str = "recipe"

    def to_dict(self) -> dict[str, Any]:
        """The TOML document as a dict (what :func:`save_recipe` writes)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in TOP_KEYS if getattr(self, k) is not None}
        steps = []
        for i, s in enumerate(self.steps, 1):
            held = [k for k, v in s.params.items()
                    if is_image_object(v) or isinstance(v, (list, tuple)) and any(map(is_image_object, v))]
            if held:  # an array or a PIL image given from Python: a TOML file can only name a file
                name = held[0]
                raise RecipeError(f"{_where(self.source, i, s.effect)}: parameter {name!r} holds an image in "
                                  "memory, which a recipe file cannot; save it as an image file and name the file")
            table: dict[str, Any] = {"effect": s.effect}
            if s.model:
                table["model"] = s.model
            table.update({k: list(v) if isinstance(v, tuple) else v for k, v in s.params.items()
                          if v is not None})
            steps.append(table)
        out["step"] = steps
        return out

    def resolve(self, path: str) -> str:
        """An image path from the recipe, made absolute against :attr:`base_dir`."""
        file = Path(path).expanduser()
        if self.base_dir is not None and not file.is_absolute():
            file = self.base_dir / file
        return str(file)

    def resolved_weights(self) -> str | None:
        """The recipe's ``weights``: a keyword as written, a weights file made absolute like image paths."""
        return self.resolve(self.weights) if is_weights_file(self.weights) else self.weights


def _where(source: str, index: int | None = None, effect: Any = None) -> str:
    if index is None:
        return source
    return f"{source}: step {index}" + (f" ({effect})" if isinstance(effect, str) and effect else "")


def parse_recipe(data: Mapping[str, Any], *, source: str = "recipe",
                 base_dir: str | os.PathLike | None = None) -> Recipe:
    """Check a recipe's structure (not yet its effects and parameters: see :func:`validate_recipe`)."""
    data = dict(data)
    steps_raw = data.pop("step", None)
    for key in data:
        if key not in TOP_KEYS:
            hint = suggest(key, (*TOP_KEYS, "step"))
            raise RecipeError(
                f"{source}: unknown top-level key {key!r}{hint}; a recipe has {', '.join(TOP_KEYS)} and "
                f"[[step]] tables (effect parameters go inside a [[step]] table)")
    if steps_raw is None:
        raise RecipeError(f"{source}: no steps; add at least one [[step]] table with effect = \"NAME\"")
    if isinstance(steps_raw, Mapping):
        raise RecipeError(f"{source}: 'step' is a single table; write [[step]] (double brackets) for each step")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise RecipeError(f"{source}: 'step' must be a list of [[step]] tables with at least one step")
    for key, kind in (("input", str), ("weights", str), ("model", str), ("name", str), ("description", str)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise RecipeError(f"{source}: {key} must be a string, not {data[key]!r}")
    seed = data.get("seed")
    if seed is not None:
        try:
            check_seed(seed)
        except ParameterError as exc:
            raise RecipeError(f"{source}: {exc}") from None
    steps = []
    for i, table in enumerate(steps_raw, 1):
        if not isinstance(table, Mapping):
            raise RecipeError(f"{_where(source, i)}: expected a table with effect = \"NAME\", got {table!r}")
        params = dict(table)
        effect = params.pop("effect", None)
        model = params.pop("model", None)
        if not isinstance(effect, str) or not effect:
            raise RecipeError(f"{_where(source, i)}: needs effect = \"NAME\" (see 'gradfx list')")
        if model is not None and not isinstance(model, str):
            raise RecipeError(f"{_where(source, i, effect)}: model must be a string, not {model!r}")
        for name, value in params.items():
            if isinstance(value, Mapping):
                raise RecipeError(f"{_where(source, i, effect)}: parameter {name!r} is a table; parameters "
                                  f"are numbers, strings, booleans or lists")
        steps.append(Step(effect, params, model))
    return Recipe(steps=steps, input=data.get("input"), seed=seed, weights=data.get("weights"),
                  model=data.get("model"), name=data.get("name"), description=data.get("description"),
                  base_dir=Path(base_dir) if base_dir is not None else None, source=source)


def loads_recipe(text: str, *, source: str = "recipe", base_dir: str | os.PathLike | None = None) -> Recipe:
    """Parse recipe TOML text (relative image paths resolve against ``base_dir``, default the working folder)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{source}: not valid TOML: {exc}") from None
    return parse_recipe(data, source=source, base_dir=base_dir)


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read a recipe file. Relative image paths in it resolve against the file's folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe {str(file)!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise RecipeError(f"recipe {str(file)!r} is a folder; name a .toml file inside it") from None
    except UnicodeDecodeError:
        raise RecipeError(f"recipe {str(file)!r} is not a text file (a recipe is TOML in UTF-8); check the path, "
                          "or re-save it as UTF-8 text") from None
    except OSError as exc:
        raise RecipeError(f"recipe {str(file)!r} cannot be read: {exc}") from None
    return loads_recipe(text, source=str(file), base_dir=file.resolve().parent)


def dumps_recipe(recipe: Recipe) -> str:
    """The recipe as TOML: its top-level keys, then one ``[[step]]`` table per step, whatever their length
    (tomli-w alone writes short steps as an inline ``step = [...]`` array and long ones as tables)."""
    import tomli_w

    data = recipe.to_dict()
    steps = data.pop("step")
    return tomli_w.dumps(data) + "".join("\n[[step]]\n" + tomli_w.dumps(step) for step in steps)


def save_recipe(recipe: Recipe, path: str | os.PathLike, *, registry: Registry | None = None) -> Path:
    """Write a recipe as TOML, atomically. Relative image paths are rewritten relative to the new file's
    folder, so the saved recipe finds the same images."""
    file = Path(path)
    target = file.resolve().parent
    rebased = _rebase(recipe, target, registry)
    text = dumps_recipe(rebased)
    return atomic.atomic_write(file, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _rebase(recipe: Recipe, target: Path, registry: Registry | None) -> Recipe:
    if recipe.base_dir is None or recipe.base_dir.resolve() == target:
        return recipe

    def move(value: str) -> str:
        if Path(value).expanduser().is_absolute():
            return value
        return os.path.relpath(recipe.resolve(value), target)

    registry = registry or get_registry()
    steps = []
    for s in recipe.steps:
        params = dict(s.params)
        effect = registry.effects.get(s.effect)
        for p in effect.schema if effect is not None else ():
            if p.name in params:  # image paths, init = "file", direction(L, 'v.npy')...
                params[p.name] = p.map_paths(params[p.name], move)
        steps.append(Step(s.effect, params, s.model))
    weights = move(recipe.weights) if is_weights_file(recipe.weights) else recipe.weights
    return Recipe(steps=steps, input=move(recipe.input) if recipe.input else None, seed=recipe.seed,
                  weights=weights, model=recipe.model, name=recipe.name, description=recipe.description,
                  base_dir=target, source=recipe.source)


def plan_recipe(recipe: Recipe, image: Any = None, *, seed: int | None = None, weights: str | None = None,
                model: str | None = None, device: str | None = None, registry: Registry | None = None,
                snapshots: str | os.PathLike | None = None, longest_side: int | None = None,
                check_only: bool = False, models: bool = True, image_later: bool = False) -> Plan:
    """The recipe's :class:`~gradfx.engine.plan.Plan` on ``image`` (default: the recipe's ``input``): every
    step checked (effect, parameters and files against the recipe's folder, model, weights) once, before any
    compute. ``seed``, ``weights`` and ``model`` override the recipe's. ``check_only`` (``gradfx chain
    --check``) needs no input image and never downloads weights. ``models=False`` stops at the
    network-free :func:`~gradfx.engine.running.plan.draft` (executing it checks the layers).
    ``image_later``: the recipe's ``input`` is left aside, each run gets its own image (a batch's items)."""
    return (plan if models else draft)(recipe.steps, None if image_later else recipe_input(recipe, image), model=model or recipe.model,
                weights=weights or recipe.resolved_weights() or "auto",
                seed=seed if seed is not None else (recipe.seed or 0), device=device, registry=registry,
                base_dir=recipe.base_dir, longest_side=longest_side, source=recipe.source, name=recipe.name or recipe.source,
                snapshots=snapshots, check_only=check_only, image_later=image_later,
                input_fix="give one on the command line or set input = \"photo.jpg\" in the recipe",
                model_fix="set model = \"...\" in the step", layer_fix="set model = \"{model}\" in the step")


def validate_recipe(recipe: Recipe, *, registry: Registry | None = None,
                    model: str | None = None) -> list[tuple[Effect, dict[str, Any], str]]:
    """The TensorFlow-free checks of :func:`plan_recipe` (effects, parameters, image files, models allowed);
    returns (effect, resolved parameters, model name) per step. Errors name the step."""
    p = draft(recipe.steps, model=model or recipe.model, registry=registry, base_dir=recipe.base_dir,
              source=recipe.source, check_only=True, model_fix="set model = \"...\" in the step")
    return [(s.effect, s.params, s.model) for s in p.steps]


def recipe_input(recipe: Recipe, image: Any = None) -> Any:
    """The image a recipe starts from: ``image`` if given, else the recipe's ``input`` resolved against its
    folder (it must exist), else None."""
    if image is None and recipe.input is not None:
        image = recipe.resolve(recipe.input)
        if not Path(image).is_file():
            raise ImageError(f"{recipe.source}: input image {recipe.input!r} ({image}) does not exist; check the "
                             f"path (it is relative to the recipe's folder)")
    return image


def run_recipe(recipe: Recipe | str | os.PathLike, image: Any = None, *, seed: int | None = None,
               weights: str | None = None, model: str | None = None, device: str | None = None,
               progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
               registry: Registry | None = None, snapshots: str | os.PathLike | None = None,
               longest_side: int | None = None) -> Result:
    """Run a recipe (a :class:`Recipe` or a path to one) on ``image`` (default: the recipe's ``input``).

    ``seed``, ``weights`` and ``model`` override the recipe's. Everything is validated first; the result's
    report has one report per step under ``reports``.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    p = plan_recipe(recipe, image, seed=seed, weights=weights, model=model, device=device, registry=registry,
                    snapshots=snapshots, longest_side=longest_side)
    return execute(p, progress=progress, cancel=cancel)


__all__ = ["Recipe", "load_recipe", "loads_recipe", "parse_recipe", "save_recipe", "dumps_recipe",
           "plan_recipe", "validate_recipe", "recipe_input", "run_recipe", "TOP_KEYS"]
