"""``gradfx resume DIR``: finish a run from its checkpoint folder (``gradfx run ... --checkpoint DIR``).

On the CPU with the same seed, the result is byte for byte what the uninterrupted run would have written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradfx.engine.images.save import check_output_path
from gradfx.engine.running import api
from gradfx.engine.running.checkpoint import Checkpoint

from .. import progressbar
from .run import Interrupt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resume", help="finish an interrupted run from its checkpoint folder")
    p.add_argument("checkpoint", metavar="DIR", help="the folder given to 'gradfx run --checkpoint'")
    p.add_argument("-o", "--output", help="write here instead of the run's own output path")
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an existing file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    spec = Checkpoint.read_spec(args.checkpoint)  # resume_run loads the input image itself
    output = Path(args.output or spec.get("output") or "resumed.png")
    protect = spec.get("protect", [])
    # before any compute; the run's own output holds its partial image and is replaced, an -o file is not
    check_output_path(output, protect=protect, overwrite=args.overwrite or not args.output)
    with Interrupt() as interrupt, progressbar.ProgressBar(disable=args.quiet) as bar:
        result, spec = api.resume_run(args.checkpoint, progress=bar.update, cancel=interrupt.token)
    result.save(output, overwrite=True, protect=protect, report=spec.get("report"))
    return progressbar.finish(result, output, interrupted=interrupt.hit, quiet=args.quiet)
