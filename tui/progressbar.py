"""The CLI's Rich progress bar (one consumer of the engine's progress events) and its closing lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gradfx.engine.progress import ProgressEvent

_err = Console(stderr=True)


class ProgressBar:
    """Draws from the first progress event on: an error before any step prints its one line and nothing else
    (a bar started at once printed an empty line when it closed). Only on a terminal: Rich draws nothing of a
    transient bar into a file or a pipe but an empty line when it stops."""

    def __init__(self, *, disable: bool = False) -> None:
        disable = disable or not _err.is_interactive
        self.disable = disable
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=_err, transient=True, disable=disable,
        )
        self._task: Any = None
        self._stage = ""
        self._started = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._progress.stop()

    def update(self, event: ProgressEvent) -> None:
        if self.disable:
            return
        if not self._started:
            self._progress.start()
            self._started = True
        if self._task is None or event.stage != self._stage:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._stage = event.stage
            self._task = self._progress.add_task(event.stage, total=event.steps, loss="-")
        self._progress.update(self._task, completed=event.step, loss=f"{event.loss:.4g}")


def say_notices(notices: Iterable[str]) -> list[str]:
    """Print each fall-back a plan takes (:attr:`Plan.notices <gradfx.engine.running.plan.Plan.notices>`: the
    default model followed the weights, random weights...) once, right after planning and before any compute
    (they came after 40-70 s of it); returns them, for :func:`finish` to leave out."""
    said = list(dict.fromkeys(notices))
    for line in said:
        print(f"gradfx: warning: {line}", file=sys.stderr, flush=True)
    return said


def finish(result: Any, output: Path, *, interrupted: bool, quiet: bool, said: Iterable[str] = ()) -> int:
    """Print the closing lines (warnings not ``said`` before the run, where the output went) and return the
    exit code."""
    report = result.report
    said = set(said)
    for warning in report.get("warnings", []):
        if warning not in said:
            print(f"gradfx: warning: {warning}", file=sys.stderr)
    for message in report.get("messages", []):
        print(f"gradfx: {message}", file=sys.stderr)
    if not quiet:
        failed = report.get("status") == "failed"
        partial = f" (partial: {'the effect failed after solving' if failed else 'stopped early'})" \
            if result.partial else ""
        print(f"wrote {output}{partial} in {report.get('seconds', 0):.1f}s", file=sys.stderr)
    if interrupted:
        return 130
    if report.get("status") == "non-finite":
        return 3
    if report.get("status") == "failed":  # the image is written, but the effect did not finish
        return 2
    return 0
