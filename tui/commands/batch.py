"""``gradfx batch EFFECT|RECIPE.toml INPUT... -o OUTDIR``: one effect or recipe over images, folders, globs and
videos, resumable, locally or on a Ray cluster (``--ray``). See ``gradfx.engine.batch`` for items, outputs,
seeds and the manifest.

Ctrl-C once: the items in flight finish and no more start; twice: they are abandoned (nothing of theirs is
recorded); either way the same command resumes. Exit status: 0 all done, 1 some item failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gradfx.engine.batch import BatchEvent, BatchSummary, check_batch, run_batch
from gradfx.engine.params import parse_assignments
from gradfx.engine.progress import CancelToken

from .. import progressbar
from ..detach import add_detach, detach
from .run import WEIGHTS_HELP


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="run an effect or recipe over many images, folders, globs or videos",
        description="Run an effect (or a recipe .toml) on every image of folders (recursively), globs and files, "
                    "and every frame of videos, into OUTDIR, keeping relative paths; a video also comes back as a "
                    "video. OUTDIR/manifest.jsonl records each item; rerunning the command skips finished items "
                    "and retries failed ones. Each item's seed derives from --seed and its path (the manifest "
                    "records it; 'gradfx run ... --seed S' repeats the item exactly).")
    p.add_argument("target", metavar="EFFECT|RECIPE.toml", help="effect name (see 'gradfx list') or recipe file")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs (quote them) or videos")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if needed)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set an effect parameter; repeatable; see 'gradfx show EFFECT'")
    p.add_argument("--size", type=int, metavar="PX", help="resize each input to this longest side first")
    p.add_argument("--model", help="backbone model (default: the effect's own); see 'gradfx models'")
    p.add_argument("--weights", default=None, help=f"{WEIGHTS_HELP}; default: the recipe's, else auto")
    p.add_argument("--seed", type=int, default=None,
                   help="batch seed (default: the recipe's, else 0); each item's seed derives from it and its path")
    p.add_argument("--device", default=None,
                   help="cpu, gpu or gpu:N for every item (default: one worker per GPU, else the CPU)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray: alone, a local cluster; 'auto' or HOST:PORT joins one (OUTDIR must be shared "
                        "storage there); put it after the inputs or write --ray=ADDRESS")
    p.add_argument("--gpus-per-item", type=float, metavar="N",
                   help="with --ray: GPUs each item reserves (default 1 where the cluster has GPUs, else 0)")
    p.add_argument("--workers", type=int, metavar="N", help="with --ray: at most N workers (default: all that fit)")
    p.add_argument("--overwrite", action="store_true", help="replace files in OUTDIR this batch did not write")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_detach(p)
    p.set_defaults(func=main)


class BatchBar:
    """Rich bars: the batch (done/total, failed, ETA) and each item in flight's steps."""

    def __init__(self, *, disable: bool = False) -> None:
        console = Console(stderr=True)
        disable = disable or not console.is_interactive  # as ProgressBar: nothing but a blank line in a pipe
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=console, transient=True, disable=disable)
        self.disable = disable
        self._batch: Any = None
        self._items: dict[str, Any] = {}  # a bar per item in flight (one per local worker)
        self._lock = threading.Lock()

    def __enter__(self) -> BatchBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._batch is not None:  # drawn from the first event on: an early error prints only its line
            self._progress.stop()

    def update(self, ev: BatchEvent) -> None:
        if ev.status == "notice":  # a fall-back, before any item runs: said even without bars
            progressbar.say_notices([ev.message or ""])
            return
        if self.disable:
            return
        with self._lock:
            if self._batch is None:
                self._progress.start()
                self._batch = self._progress.add_task("batch", total=ev.total, info="")
            eta = ev.eta
            info = f"failed {ev.failed}" + (f" · skipped {ev.skipped}" if ev.skipped else "") + (
                f" · ETA {_clock(eta)}" if eta is not None else "")
            self._progress.update(self._batch, completed=ev.done + ev.failed + ev.skipped, info=info)
            if ev.step is not None and ev.item is not None:
                total = ev.step.total_steps or ev.step.steps
                if ev.item not in self._items:
                    self._items[ev.item] = self._progress.add_task(ev.item, total=total, info="")
                self._progress.update(self._items[ev.item], description=f"{ev.item} {ev.step.stage}".strip(),
                                      total=total, completed=ev.step.total_step or ev.step.step,
                                      info=f"loss {ev.step.loss:.4g}")
            elif ev.status in ("done", "failed") and ev.item in self._items:
                self._progress.remove_task(self._items.pop(ev.item))


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Interrupts:
    """First Ctrl-C: finish the items in flight, start no more; second: abandon them; third: abort."""

    def __init__(self) -> None:
        self.stop = CancelToken()
        self.cancel = CancelToken()
        self._old: Any = None

    def __enter__(self) -> Interrupts:
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.cancel.cancelled:
            raise KeyboardInterrupt
        if self.stop.cancelled:
            self.cancel.cancel()
            print("\ngradfx: abandoning the items in flight (Ctrl-C again to abort)", file=sys.stderr)
            return
        self.stop.cancel()
        print("\ngradfx: interrupted; finishing the items in flight, starting no more (Ctrl-C again to abandon "
              "them)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)


def summarize(summary: BatchSummary, argv: list[str] | None = None, *, quiet: bool = False) -> int:
    """Print the closing lines (failed items, videos not written, how to resume) and return the exit status."""
    for key, error in summary.failed:
        print(f"gradfx: failed: {key}: {error}", file=sys.stderr)
    for key, error in summary.videos_failed:
        print(f"gradfx: failed: {key}: {error}", file=sys.stderr)
    for note in summary.notes:
        print(f"gradfx: note: {note}", file=sys.stderr)
    parts = [f"{len(summary.done)} done", f"{len(summary.failed)} failed"]
    if summary.skipped:
        parts.append(f"{len(summary.skipped)} already done")
    if summary.pending:
        parts.append(f"{summary.pending} not run")
    failed = summary.failed or summary.videos_failed
    if not quiet or failed or summary.interrupted:
        videos = f"; videos: {', '.join(summary.videos)}" if summary.videos else ""
        unwritten = f"; {len(summary.videos_failed)} video(s) not written" if summary.videos_failed else ""
        print(f"batch: {', '.join(parts)} of {summary.total}{unwritten} in {summary.seconds:.1f}s; manifest "
              f"{summary.manifest}{videos}", file=sys.stderr)
    if summary.interrupted or failed:
        command = "gradfx " + shlex.join(argv if argv is not None else sys.argv[1:])
        if summary.interrupted:
            print(f"gradfx: to resume, run the same command again: {command}", file=sys.stderr)
        elif summary.done or summary.skipped:  # other settings would mix with what is done
            print(f"gradfx: to retry the failed items, run the same command again: {command}", file=sys.stderr)
        else:  # nothing done: the fix an error names (--size, say) is welcome
            print(f"gradfx: to retry, run the command again with the fix the errors name: {command}",
                  file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if failed else 0


def main(args: argparse.Namespace) -> int:
    params = parse_assignments(args.param)
    if args.detach:  # the checks without TensorFlow here; the models and weights when it runs
        count = check_batch(args.target, args.inputs, args.output, params=params, model=args.model, seed=args.seed,
                            longest_side=args.size, devices=[args.device] if args.device else None, ray=args.ray,
                            gpus_per_item=args.gpus_per_item, workers=args.workers)
        spec = {"target": args.target, "inputs": args.inputs, "output": args.output, "params": params,
                "model": args.model, "weights": args.weights, "seed": args.seed, "size": args.size,
                "device": args.device, "ray": args.ray, "gpus_per_item": args.gpus_per_item,
                "workers": args.workers, "overwrite": args.overwrite}
        what = f"batch {args.target} {' '.join(args.inputs)} -> {args.output} ({count} items)"
        return detach("batch", spec, what=what, device=args.device, every_gpu=not args.ray, quiet=args.quiet)
    with Interrupts() as keys, BatchBar(disable=args.quiet) as bar:
        summary = run_batch(args.target, args.inputs, args.output, params=params, model=args.model,
                            weights=args.weights, seed=args.seed, longest_side=args.size,
                            devices=[args.device] if args.device else None, ray=args.ray,
                            gpus_per_item=args.gpus_per_item, workers=args.workers, overwrite=args.overwrite,
                            progress=bar.update, stop=keys.stop, cancel=keys.cancel)
    return summarize(summary, quiet=args.quiet)
