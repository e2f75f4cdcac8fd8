"""``gradfx list``: every registered effect, with its summary and the plugin that provides it."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gradfx.engine.registry import get_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list effects and the plugins that provide them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    reg = get_registry()
    rows = []
    for name in sorted(reg.effects):
        eff, plugin = reg.effects[name], reg.plugins[reg.effect_plugin[name]]
        origin = "built-in" if plugin.builtin else (plugin.distribution or plugin.module)
        rows.append({"effect": name, "summary": eff.summary, "plugin": plugin.name, "from": origin,
                     "needs_input": eff.needs_input, "model": eff.model})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    table = Table(title="gradfx effects", title_justify="left")
    for col in ("effect", "summary", "plugin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["effect"], r["summary"], r["plugin"] if r["from"] == "built-in" else
                      f"{r['plugin']} ({r['from']})")
    console.print(table)
    for problem in reg.problems():
        console.print(f"[yellow]{escape(problem)}; see 'gradfx plugins'[/]")
    if not rows:
        console.print("no effects registered")
    return 0
