"""What a job's worker runs: ``gradfx run``, ``gradfx chain`` and ``gradfx batch`` after their checks, from the
spec the command recorded (its engine arguments; file paths as given, resolved in the job's working folder),
with the job's progress writer and cancel token, and a checkpoint so the job can resume.

- ``run``: the checkpoint is the ``--checkpoint`` folder given, else ``checkpoint/`` in the job's folder; a
  resume finishes it as ``gradfx resume`` does (on the CPU, the bytes an uninterrupted run writes).
- ``chain``: the recipe's text as it was when the job was made (its files resolve against the recipe's
  folder), a checkpoint per step (:meth:`~gradfx.engine.running.checkpoint.Checkpoint.for_step`): a resume
  reuses the finished steps' solutions and continues the step that was running.
- ``batch``: a resume runs the batch again; its manifest skips the items done.

Each returns an :class:`Outcome`; a gradfx error propagates (the worker records it).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError, one_line
from ..progress import CancelToken
from ..running.checkpoint import EVERY, RUN_FILE, Checkpoint
from .progressfile import ProgressWriter
from .store import CHECKPOINT, Job


@dataclass
class Outcome:
    """How a job's work ended: ``status`` done, failed or cancelled; the files written; the run report (a
    batch's summary); the error of a failed job."""

    status: str
    outputs: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    error: str | None = None


def _from_result(result: Any, written: list[Any], cancel: CancelToken) -> Outcome:
    """The outcome of a run or chain that wrote ``written``: cancelled (the image so far kept), failed (a
    non-finite loss, an effect that failed after solving: the image kept, the report's message), or done."""
    report = result.report
    outputs = [str(p) for p in written]
    if result.partial and cancel.cancelled:
        return Outcome("cancelled", outputs, report)
    if report.get("status") != "done" or result.partial:
        why = "; ".join(report.get("messages") or []) or report.get("error") or f"stopped early ({report.get('status')})"
        return Outcome("failed", outputs, report, f"{why}; the image so far is written")
    return Outcome("done", outputs, report)


def _checkpoint(job: Job, make: Callable[[], Checkpoint]) -> Checkpoint | None:
    """``make()``'s checkpoint, or None when the folder cannot take one (a full disk, a deleted state folder):
    said in the log, and the run goes on without."""
    try:
        return make()
    except (OutputError, OSError) as exc:
        print(f"gradfx: job {job.id}: no checkpoint ({one_line(exc)}); the run goes on, but cannot resume",
              file=sys.stderr, flush=True)
        return None


def _private(folder: Path) -> Path:
    """The job's own checkpoint folder, created 0700 (its files are then written 0600)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def run(job: Job, spec: dict[str, Any], progress: ProgressWriter, cancel: CancelToken, resume: bool) -> Outcome:
    from ..running import api
    from ..running.execute import execute
    from ..running.plan import complete, draft

    own = not spec.get("checkpoint")
    folder = job.folder / CHECKPOINT if own else Path(spec["checkpoint"])
    protect, report = spec.get("protect") or [], spec.get("report")
    if resume and (folder / RUN_FILE).is_file():  # as `gradfx resume`: the input image is the checkpoint's
        result, _ = api.resume_run(folder, progress=progress, cancel=cancel)
    else:
        plan = complete(draft([(spec["effect"], spec["params"])], spec.get("input"), model=spec.get("model"),
                              weights=spec.get("weights") or "auto", seed=spec.get("seed") or 0,
                              device=spec.get("device"), longest_side=spec.get("size"), chain=False))
        info = {"output": spec["output"], "report": report, "protect": protect}
        every = spec.get("checkpoint_every") or EVERY
        ckpt = _checkpoint(job, lambda: Checkpoint.for_plan(plan, _private(folder) if own else folder, every,
                                                            info=info))
        result = execute(plan, progress=progress, cancel=cancel, checkpoint=ckpt)
    written = result.save(spec["output"], overwrite=True, protect=protect, report=report)
    return _from_result(result, written, cancel)


def chain(job: Job, spec: dict[str, Any], progress: ProgressWriter, cancel: CancelToken, resume: bool) -> Outcome:
    from ..running.execute import execute
    from ..running.recipes import loads_recipe, plan_recipe, recipe_input

    recipe = loads_recipe(spec["recipe_text"], source=spec["recipe"], base_dir=spec["recipe_dir"])
    plan = plan_recipe(recipe, recipe_input(recipe, spec.get("input")), seed=spec.get("seed"),
                       weights=spec.get("weights"), model=spec.get("model"), device=spec.get("device"),
                       snapshots=spec.get("snapshots"), longest_side=spec.get("size"), models=False)
    folder = job.folder / CHECKPOINT
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
    ckpt = _checkpoint(job, lambda: Checkpoint(_private(folder)))
    result = execute(plan, progress=progress, cancel=cancel, checkpoint=ckpt)
    protect = spec.get("protect") or []
    written = result.save(spec["output"], overwrite=True, protect=protect, report=spec.get("report"))
    return _from_result(result, written, cancel)


def batch(job: Job, spec: dict[str, Any], progress: ProgressWriter, cancel: CancelToken, resume: bool) -> Outcome:
    from ..batch import run_batch

    summary = run_batch(spec["target"], spec["inputs"], spec["output"], params=spec.get("params") or {},
                        model=spec.get("model"), weights=spec.get("weights"), seed=spec.get("seed"),
                        longest_side=spec.get("size"), devices=[spec["device"]] if spec.get("device") else None,
                        ray=spec.get("ray"), gpus_per_item=spec.get("gpus_per_item"), workers=spec.get("workers"),
                        overwrite=bool(spec.get("overwrite")), progress=progress.batch, stop=cancel,
                        cancel=cancel)  # cancelling a batch job abandons its items in flight (rerun on resume)
    report = {"total": summary.total, "done": summary.done, "failed": [list(f) for f in summary.failed],
              "skipped": summary.skipped, "videos": summary.videos, "seconds": round(summary.seconds, 3),
              "manifest": str(summary.manifest)}
    outputs = [str(summary.outdir), *summary.videos]
    if summary.interrupted:
        return Outcome("cancelled", outputs, report)
    if summary.failed:
        key, error = summary.failed[0]
        more = f" and {len(summary.failed) - 1} more" if len(summary.failed) > 1 else ""
        return Outcome("failed", outputs, report, f"{len(summary.failed)} of {summary.total} items failed ({key}: "
                       f"{error}{more}); see {summary.manifest}; 'gradfx jobs resume {job.id}' retries them")
    return Outcome("done", outputs, report)


TASKS = {"run": run, "chain": chain, "batch": batch}
