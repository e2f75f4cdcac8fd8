"""``gradfx show EFFECT``: an effect's parameters, one line each (name, default, what is allowed), on the model a
run would use here; ``-v`` adds each one's help and where its defaults come from."""

from __future__ import annotations

import argparse
import json
import textwrap
from functools import partial
from typing import Any

from rich.console import Console
from rich.text import Text

from gradfx.engine.errors import ParameterError
from gradfx.engine.models.choice import followed_model
from gradfx.engine.registry import get_registry

#: the columns of a parameter's line: its name, then its default, then what is allowed
NAME_WIDTH = 16
DEFAULT_WIDTH = 22
#: a parameter whose default differs by model is marked with this after the default
PER_MODEL = "*"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show an effect's parameters: default and allowed values (-v: help too)",
                       description="An effect's parameters, one a line: the default on the model a run would "
                                   "use here (or --model's) and the values allowed. -v adds each one's help and "
                                   "where its defaults come from.")
    p.add_argument("effect")
    p.add_argument("--model", help="show the defaults on this model (default: the one a run would use here)")
    p.add_argument("-v", "--long", action="store_true", help="each parameter's help and its defaults' origins")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    reg = get_registry()
    eff = reg.effect(args.effect)
    followed = None if args.model else followed_model(eff, reg)  # decided as a run decides, downloading nothing
    model = args.model or followed or eff.model
    if eff.model is None and args.model:
        raise ParameterError(f"effect {eff.name!r} reads no backbone model (it runs the networks "
                             f"{', '.join(eff.networks)}); leave --model out")
    # a plugin's model (or an unknown name): its hook; None for an effect that reads no backbone
    spec = None if model is None else reg.known_model(model) or reg.model(model)
    params = [{"name": p.name, "type": p.kind, "default": p.format(p.default), "allowed": p.allowed(),
               "required": p.required, "help": p.help, "origin": p.origin, "only_when": p.condition(),
               "default_here": p.format(p.default_for(model)),
               "model_defaults": {m: {"default": p.format(value), "origin": origin}
                                  for m, value, origin in p.model_defaults}} for p in eff.schema]
    if args.json:
        print(json.dumps({"effect": eff.name, "summary": eff.summary, "model": eff.model, "model_here": model,
                          "networks": list(eff.networks), "needs_input": eff.needs_input, "params": params},
                         indent=2))
        return 0
    console = Console(highlight=False)
    width = max(console.width, 60)
    wrap = partial(textwrap.wrap, width=width, break_long_words=False, break_on_hyphens=False)
    console.print(Text.assemble((eff.name, "bold"), f" — {eff.summary}"))
    heading = _heading(eff, reg.effect_plugin[eff.name], model, followed, args.model)
    for line in wrap(heading, subsequent_indent="  "):
        console.print(line, soft_wrap=True)
    console.print()
    min_size = getattr(spec, "min_size", None)
    if args.long:
        for p in eff.schema:
            _long(console, wrap, p, model, min_size)
    else:
        _table(console, wrap, eff, model, min_size)
    if len(eff.schema):
        first = eff.schema.params[0]
        console.print()
        photo = "photo.jpg " if eff.needs_input else ""
        example = f"-p {first.name}={first.format(first.default_for(model)) or '...'}"
        for line in wrap(f"set with -p NAME=VALUE, e.g. gradfx run {eff.name} {photo}-o out.png {example}",
                         subsequent_indent="  "):
            console.print(line, soft_wrap=True)
    return 0


def _heading(eff: Any, plugin: str, model: str | None, followed: str | None, asked: str | None) -> str:
    """Where the effect comes from, what it takes, and the model whose defaults follow (said as a run decides
    it: ``gradfx show deepdream`` headed "default model: inception_v3" where a run here uses vgg16)."""
    takes = {True: "needs an input image", False: "makes its image from nothing (no input)"}.get(
        eff.needs_input, "starts from an input image if given, else from nothing")
    works = "" if eff.models is None else f" · works with {', '.join(eff.models)}"
    if eff.model is None:
        where = f"reads no backbone: runs the networks {', '.join(eff.networks)} (gradfx weights)"
    elif asked:
        where = f"defaults on {model}" + (f" (its own model is {eff.model})" if model != eff.model else "")
    elif followed:
        where = (f"a run here uses {model}: its own model, {eff.model}, has no trained weights here, so it "
                 f"follows the weights (--model {eff.model} keeps it)")
    else:
        where = f"a run here uses {model}, its own model"
    return f"plugin {plugin} · {takes}{works} · {where}"


def _default(p: Any, model: str) -> str:
    value = p.format(p.default_for(model))
    defaults = {p.format(p.default)} | {p.format(v) for _, v, _ in p.model_defaults}
    return (value or ("required" if p.required else "-")) + (PER_MODEL if len(defaults) > 1 else "")


def _allowed(p: Any, min_size: int | None) -> str:
    """What is allowed in a few words, and when the parameter applies at all (``lr``: only with Adam)."""
    return p.brief(min_size) + (f"; only with {p.condition()}" if p.condition() else "")


def _table(console: Console, wrap: Any, eff: Any, model: str, min_size: int | None) -> None:
    """One line per parameter: its name, its default on ``model`` and what is allowed (a long default gets its
    own line, what is allowed goes under it)."""
    indent = " " * (NAME_WIDTH + DEFAULT_WIDTH + 2)
    heading = f"default ({model})" if model and len(model) + 10 <= DEFAULT_WIDTH else "default"
    console.print(Text(f"{'parameter':<{NAME_WIDTH}} {heading:<{DEFAULT_WIDTH}} allowed", style="dim"))
    marked = False
    for p in eff.schema:
        default = _default(p, model)
        marked = marked or default.endswith(PER_MODEL)
        start = f"{p.name:<{NAME_WIDTH}} "
        if len(p.name) >= NAME_WIDTH or len(default) > DEFAULT_WIDTH:  # the default whole, on a line of its own
            lines = [start + default] if len(start + default) <= console.width else [p.name, f"    {default}"]
            lines += wrap(_allowed(p, min_size), initial_indent=indent, subsequent_indent=indent)
        else:
            lines = wrap(start + f"{default:<{DEFAULT_WIDTH}} " + _allowed(p, min_size), subsequent_indent=indent)
        text = Text("\n".join(lines))
        text.stylize("bold", 0, len(p.name))
        console.print(text, soft_wrap=True)
    if marked:
        console.print()
        for line in wrap(f"{PER_MODEL} the default on {model}; other models have their own (--model NAME shows "
                         f"them); -v says where each comes from, with each parameter's help"):
            console.print(line, soft_wrap=True)


def _long(console: Console, wrap: Any, p: Any, model: str, min_size: int | None) -> None:
    """A parameter's block: name, type, default and what is allowed; its help wrapped under it; its defaults per
    model, each with where it comes from, in one paragraph."""
    value = p.format(p.default_for(model))
    default = f"default {value}" if value else "required" if p.required else "no default"
    lines = wrap(f"{p.name}  {p.kind} · {default} · {p.allowed()}", subsequent_indent="    ")
    lines += wrap(p.help, initial_indent="    ", subsequent_indent="    ") if p.help else []
    lines += wrap(f"only with {p.condition()}", initial_indent="    ") if p.condition() else []
    if p.model_defaults:
        models = {m: (p.format(v) or "none", origin) for m, v, origin in p.model_defaults}
        own = [(m, v, o) for m, (v, o) in models.items()]
        plain = ("others", p.format(p.default) or "none", p.origin)
        parts = [f"{m} {v}" + (f" ({o})" if o else "") for m, v, o in [*own, plain]]
        lines += wrap("defaults: " + "; ".join(parts), initial_indent="    ", subsequent_indent="    ")
    elif p.origin and value:
        lines += wrap(f"default: {p.origin}", initial_indent="    ", subsequent_indent="    ")
    text = Text("\n".join(lines) + "\n")
    text.stylize("bold", 0, len(p.name))
    console.print(text, soft_wrap=True)
