"""``gradfx show EFFECT``: an effect's parameters with type, default, what is allowed and help."""

from __future__ import annotations

import argparse
import json
import textwrap
from functools import partial

from rich.console import Console
from rich.text import Text

from gradfx.engine.registry import get_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show an effect's parameters")
    p.add_argument("effect")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    reg = get_registry()
    eff = reg.effect(args.effect)
    params = [{"name": p.name, "type": p.kind, "default": p.format(p.default), "allowed": p.allowed(),
               "required": p.required, "help": p.help, "origin": p.origin, "only_when": p.condition(),
               "model_defaults": {model: {"default": p.format(value), "origin": origin}
                                  for model, value, origin in p.model_defaults}} for p in eff.schema]
    if args.json:
        print(json.dumps({"effect": eff.name, "summary": eff.summary, "model": eff.model,
                          "networks": list(eff.networks), "needs_input": eff.needs_input, "params": params},
                         indent=2))
        return 0
    console = Console(highlight=False)
    console.print(Text.assemble((eff.name, "bold"), f" — {eff.summary}"))
    model = f"default model: {eff.model}" if eff.model is not None else "no backbone model"
    console.print(f"plugin: {reg.effect_plugin[eff.name]}   {model}"
                  + ("" if eff.models is None else f" (works with {', '.join(eff.models)})")
                  + (f"   runs the networks {', '.join(eff.networks)} (gradfx weights)" if eff.networks else "")
                  + ("" if eff.needs_input else "   makes an image from nothing (no input needed)"))
    # one parameter a block, its help wrapped under it: a table's help column was one word a line at 80
    wrap = partial(textwrap.wrap, width=max(console.width, 40), subsequent_indent="    ",
                   break_long_words=False, break_on_hyphens=False)
    for p in params:
        default = (f"default {p['default']}" if p["default"] else "required" if p["required"]
                   else "default per model" if p["model_defaults"] else "no default")
        lines = wrap(f"{p['name']}  {p['type']} · {default} · {p['allowed']}")
        lines += wrap(p["help"], initial_indent="    ") if p["help"] else []
        lines += wrap(f"only with {p['only_when']}", initial_indent="    ") if p["only_when"] else []
        # where each default comes from, and the models that have their own
        if p["origin"] and p["default"]:
            lines += wrap(f"default: {p['origin']}", initial_indent="    ")
        for model, d in p["model_defaults"].items():
            lines += wrap(f"on {model}: {d['default'] or 'none'}" + (f" — {d['origin']}" if d["origin"] else ""),
                          initial_indent="    ")
        text = Text("\n" + "\n".join(lines))
        text.stylize("bold", 1, 1 + len(p["name"]))
        console.print(text, soft_wrap=True)  # wrapped here, with the indent; a long default keeps its line
    if params:
        console.print()
        console.print(f"set with -p NAME=VALUE, e.g. gradfx run {eff.name} "
                      f"{'photo.jpg ' if eff.needs_input else ''}-o out.png -p {params[0]['name']}="
                      f"{params[0]['default'] or '...'}")
    return 0
