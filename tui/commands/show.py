"""``gradfx show EFFECT``: an effect's parameters with type, default, what is allowed and help."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

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
               "required": p.required, "help": p.help} for p in eff.schema]
    if args.json:
        print(json.dumps({"effect": eff.name, "summary": eff.summary, "model": eff.model,
                          "needs_input": eff.needs_input, "params": params}, indent=2))
        return 0
    console = Console()
    console.print(f"[bold]{eff.name}[/] — {eff.summary}")
    console.print(f"plugin: {reg.effect_plugin[eff.name]}   default model: {eff.model}"
                  + ("" if eff.models is None else f" (works with {', '.join(eff.models)})")
                  + ("" if eff.needs_input else "   makes an image from nothing (no input needed)"))
    table = Table(show_lines=False)
    for col in ("parameter", "type", "default", "allowed", "help"):
        table.add_column(col, overflow="fold")
    for p in params:
        default = p["default"] or ("(required)" if p["required"] else "-")
        table.add_row(p["name"], p["type"], default, p["allowed"], p["help"])
    console.print(table)
    console.print(f"set with -p NAME=VALUE, e.g. gradfx run {eff.name} "
                  f"{'photo.jpg ' if eff.needs_input else ''}-o out.png -p {params[0]['name']}="
                  f"{params[0]['default'] or '...'}" if params else "")
    return 0
