"""``gradfx plugins``: every plugin, where it comes from, what it registered, and what failed and why. Exits 1
when a plugin failed or loaded only in part (a script or CI can check), else 0."""

from __future__ import annotations

import argparse
import json
import os

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gradfx.engine.registry import ENV_PLUGINS, PluginInfo, get_registry

#: the exit status when a plugin failed to load, or loaded only in part (everything else still works)
FAILED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, what they registered and what failed",
                       description="Every plugin: its distribution and version, what it registered, what failed "
                                   "and why. With --debug (before the command: gradfx --debug plugins) also the "
                                   "tracebacks. Exits 1 when a plugin failed to load fully.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=main)


def _origin(i: PluginInfo) -> str:
    if i.distribution:
        origin = f"{i.distribution} {i.version or ''}".strip()
        return f"{origin} (built-in)" if i.builtin else origin
    return "built-in" if i.builtin else "-"


def main(args: argparse.Namespace) -> int:
    from gradfx.engine.models.device import quiet_tensorflow

    quiet_tensorflow()
    reg = get_registry()
    reg.models  # noqa: B018 - load model hooks too, so their failures show
    infos = list(reg.plugins.values()) + list(reg.disabled.values())
    failed = [i for i in infos if not i.ok and not i.disabled]
    if args.json:
        print(json.dumps({"plugins": [i.to_dict() for i in infos], ENV_PLUGINS: os.environ.get(ENV_PLUGINS),
                          "unmatched_filter": reg.unmatched_filter}, indent=2))
        return FAILED if failed else 0
    console = Console()
    table = Table(title="gradfx plugins", title_justify="left", show_lines=True)
    for col in ("plugin", "module", "from", "registered", "status"):
        table.add_column(col, overflow="fold")
    for i in infos:
        registered = "\n".join(filter(None, [
            f"effects: {', '.join(i.effects)}" if i.effects else "",
            f"models: {', '.join(i.models)}" if i.models else "",
        ])) or "-"
        if i.disabled:
            status = f"[dim]disabled by {ENV_PLUGINS}[/]"
        elif i.ok:
            status = "[green]ok[/]"
        else:
            colour = "yellow" if i.registered else "red"
            status = f"[{colour}]{escape(i.describe_status())}[/]\n" + "\n".join(escape(e) for e in i.errors)
        if i.warnings:
            status += "\n" + "\n".join(f"[yellow]warning:[/] {escape(w)}" for w in i.warnings)
        table.add_row(escape(i.name), escape(i.module), escape(_origin(i)), registered, status)
    console.print(table)
    if getattr(args, "debug", False):
        for i in infos:
            for error, tb in zip(i.errors, i.tracebacks, strict=False):
                if tb:
                    console.print(f"[bold]{escape(i.name)}[/]: {escape(error)}")
                    console.print(escape(tb), highlight=False)
    if failed:
        console.print(f"[red]{len(failed)} plugin(s) did not load fully[/]; the rest work. "
                      + ("" if getattr(args, "debug", False) else "'gradfx --debug plugins' shows tracebacks."))
    if reg.filter is not None and reg.filter.names is not None:
        console.print(f"{ENV_PLUGINS}={reg.filter.value!r}: loading {reg.filter.describe()}.")
    for name in reg.unmatched_filter:
        console.print(f"[yellow]{ENV_PLUGINS} names {name!r}, but no installed plugin or distribution has "
                      f"that name[/]")
    console.print(f"{ENV_PLUGINS}=none turns external plugins off; {ENV_PLUGINS}=a,b loads only those.")
    return FAILED if failed else 0
