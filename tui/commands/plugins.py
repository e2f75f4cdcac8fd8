"""``gradfx plugins``: every plugin, where it comes from, what it registered, and what failed and why."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from gradfx.engine.registry import ENV_PLUGINS, get_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, what they registered and what failed")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from gradfx.engine.device import quiet_tensorflow

    quiet_tensorflow()
    reg = get_registry()
    reg.models  # noqa: B018 - load model hooks too, so their failures show
    infos = list(reg.plugins.values())
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    console = Console()
    table = Table(title="gradfx plugins", title_justify="left", show_lines=True)
    for col in ("plugin", "from", "registered", "status"):
        table.add_column(col, overflow="fold")
    for i in infos:
        origin = "built-in" if i.builtin else (f"{i.distribution} {i.version or ''}".strip()
                                               if i.distribution else i.module)
        registered = "\n".join(filter(None, [
            f"effects: {', '.join(i.effects)}" if i.effects else "",
            f"models: {', '.join(i.models)}" if i.models else "",
        ])) or "-"
        status = "[green]ok[/]" if i.ok else "[red]failed[/]\n" + "\n".join(i.errors)
        table.add_row(i.name, origin, registered, status)
    console.print(table)
    console.print(f"{ENV_PLUGINS}=none turns external plugins off; {ENV_PLUGINS}=a,b loads only those.")
    return 0
