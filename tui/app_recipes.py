"""Recipes in the TUI: loading one as the chain (f2, ``--recipe``) and saving the chain as one (f3), with file
paths rebased on the recipe's folder. A mixin of :class:`~gradfx.tui.app.GradfxApp`; the file format itself is
``tui/chain_model.py``'s and the engine's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gradfx.engine.errors import GradfxError, ParameterError, UnknownEffectError, suggest
from gradfx.engine.registry import Registry

from .chain_model import load_recipe, save_recipe
from .messages import RecipeLoaded, RecipeSaved
from .screens import RECIPE_SUFFIXES, FilePicker
from .widgets import ChainView


class RecipeMixin:
    """f2 / f3 and ``--recipe``."""

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
        self.post_message(RecipeLoaded(path, recipe.steps))

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
                    seed=self.seed, weights=None if self.weights == "auto" else self.weights)
            except (GradfxError, OSError) as exc:
                self._error("Could not save the recipe", exc)
                return
            self.notify(f"saved recipe {written}")
            self.post_message(RecipeSaved(Path(written)))

        self._ask_path("Save recipe as", "recipe.toml", "enter: save · esc: cancel · image paths are written "
                       "relative to the recipe", save, normalise=_toml)



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
