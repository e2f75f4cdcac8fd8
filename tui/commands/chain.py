"""``gradfx chain RECIPE.toml [INPUT] -o OUTPUT [--snapshots DIR]``: run a recipe of effects, each step's output
feeding the next. The whole recipe is checked before any compute; see ``gradfx.engine.running.recipes`` for the
format."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gradfx.engine.registry import get_registry
from gradfx.engine.running.execute import execute
from gradfx.engine.running.plan import complete
from gradfx.engine.running.recipes import load_recipe, plan_recipe, recipe_input

from .. import progressbar
from ..detach import add_detach, detach
from .run import Interrupt, add_common, check_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chain", help="run a TOML recipe: effects in sequence, each step's output the next one's input",
        description="Run a recipe: [[step]] tables with effect = NAME and its parameters, optional top-level "
                    "input, seed, weights and model. Image paths resolve relative to the recipe file. "
                    "Options given here override the recipe's.")
    p.add_argument("recipe", help="recipe file (.toml)")
    p.add_argument("input", nargs="?", help="input image (default: the recipe's input)")
    p.add_argument("-o", "--output", help="output image (default: <input>-<recipe>.png)")
    p.add_argument("--snapshots", metavar="DIR", help="also keep each step's output in DIR (stepNN-EFFECT.png)")
    p.add_argument("--size", type=int, metavar="PX", help="the longest side of the input (resized first) and of the output (a step's own size "
                        "parameter gets it unless the recipe sets it)")
    p.add_argument("--check", action="store_true",
                   help="only validate the recipe: effects, parameters, files, models, the layers the steps name and a "
                        "weights file, and say the fall-backs a run would take here (no compute, no download)")
    add_common(p)
    add_detach(p)
    p.set_defaults(func=main, seed=None, weights=None)  # None: the recipe's value (else 0 / auto)


def main(args: argparse.Namespace) -> int:
    reg = get_registry()
    recipe = load_recipe(args.recipe)
    options = dict(seed=args.seed, weights=args.weights, model=args.model, device=args.device, registry=reg,
                   longest_side=args.size)
    if args.check:  # models, layers and a weights file too: the check imports TensorFlow, but computes nothing
        plan = plan_recipe(recipe, args.input, check_only=True, **options)
        progressbar.say_notices(plan.notices)  # the fall-backs a run would take here ("ok" hid random weights)
        print(f"{args.recipe}: ok, {len(plan.steps)} step(s): {' -> '.join(s.effect.name for s in plan.steps)}")
        return 0
    source = recipe_input(recipe, args.input)
    # every check before any compute, TensorFlow-free (models are looked up when it runs)
    plan = plan_recipe(recipe, source, snapshots=args.snapshots, models=False, **options)
    stem = f"{Path(source).stem}-{Path(args.recipe).stem}" if source else Path(args.recipe).stem
    output = Path(args.output) if args.output else Path(f"{stem}.png")
    inputs = ([source] if source else []) + list(plan.files)
    check_output(output, inputs, args.overwrite, args.report, recipe=args.recipe)
    if args.detach:  # the recipe as it is now (its files resolve against its folder, as here)
        spec = {"recipe": args.recipe, "recipe_dir": str(Path(args.recipe).resolve().parent),
                "recipe_text": Path(args.recipe).read_text(encoding="utf-8"), "input": args.input,
                "output": str(output.resolve()), "snapshots": args.snapshots, "seed": args.seed,
                "weights": args.weights, "model": args.model, "device": args.device, "size": args.size,
                "report": str(Path(args.report).resolve()) if args.report else None,
                "protect": [] if args.overwrite else [str(Path(f).resolve()) for f in inputs]}
        what = f"chain {args.recipe}{f' {source}' if source else ''} -> {output}"
        progressbar.say_notices(plan.notices)  # here, where the user is; the job checks the layers (TensorFlow)
        return detach("chain", spec, what=what, device=args.device, quiet=args.quiet)
    plan = complete(plan)  # the layers against the models: the last check, before the fall-backs are said
    said = progressbar.say_notices(plan.notices)
    with Interrupt() as interrupt, progressbar.ProgressBar(disable=args.quiet) as bar:
        result = execute(plan, progress=bar.update, cancel=interrupt.token)
    result.save(output, overwrite=True, protect=[] if args.overwrite else inputs, report=args.report)
    if args.snapshots and not args.quiet:
        print(f"kept each step's output in {os.path.join(args.snapshots, '')}", file=sys.stderr)  # one slash
    return progressbar.finish(result, output, interrupted=interrupt.hit, quiet=args.quiet, said=said)
