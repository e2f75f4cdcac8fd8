"""A job's worker: ``python -m gradfx.engine.jobs.worker JOBDIR``, started by the job's supervisor once the
job's devices are free.

It records itself running (pid and start time), runs the job's task (:mod:`.tasks`) in the job's working
folder with a :class:`~.progressfile.ProgressWriter`, and records how it ended: ``done``, ``failed`` with the
one-line error, or ``cancelled``; the outputs it wrote and the run report. SIGTERM (``gradfx jobs cancel``,
a shutdown) and SIGINT cancel as Ctrl-C does: the run stops after its current step and the image so far is
written. SIGHUP is ignored. A state folder that becomes unwritable (a full disk, deleted) never stops the
run: its output is still written where it was asked, and the log says what could not be recorded.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import GradfxError, JobError, one_line
from ..progress import CancelToken
from .process import identify, signal_name
from .progressfile import ProgressWriter
from .store import LOG, REPORT, Job
from .tasks import TASKS, Outcome


def _load_plugins(names: list[str]) -> None:
    """Plugin modules the launcher had loaded by name (``gradfx tui --plugin MODULE``)."""
    from ..registry import get_registry

    registry = get_registry()
    for name in names:
        if name in registry.plugins:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, said in one line
            raise GradfxError(f"plugin module {name!r} cannot be imported ({type(exc).__name__}: {one_line(exc)}); "
                              "check PYTHONPATH") from None
        registry.add_plugin(module, name, module=name)


def work(job: Job, request: dict[str, Any], cancel: CancelToken, resume: bool) -> Outcome:
    """Run the job's task; every failure becomes a failed :class:`Outcome` with its one-line reason."""
    try:
        os.chdir(request["cwd"])
    except OSError as exc:
        return Outcome("failed", error=f"its working folder {request['cwd']!r} is gone ({one_line(exc)})")
    if cancel.cancelled:
        return Outcome("cancelled", error="cancelled before it started")
    try:
        _load_plugins(list(request.get("plugins") or ()))
        from ..models import device

        device.quiet_tensorflow()
        return TASKS[request["kind"]](job, request["spec"], ProgressWriter(job), cancel, resume)
    except GradfxError as exc:
        return Outcome("failed", error=str(exc))
    except OSError as exc:  # a file the run writes (a report) on a full disk, a folder gone
        return Outcome("failed", error=f"{one_line(exc)}; check the folder and free disk space")
    except Exception as exc:  # noqa: BLE001 - a bug: the traceback goes to the log, the job says where
        traceback.print_exc()
        return Outcome("failed", error=f"{type(exc).__name__}: {one_line(exc)} (a bug in gradfx or a plugin; the "
                                       f"traceback is in {job.folder / LOG})")


def record(job: Job, outcome: Outcome) -> None:
    """Write the report and the final status; if the state folder cannot take them, say so in the log (the
    outputs are written already)."""
    from ..running.result import report_json

    try:
        if outcome.report is not None:
            job.write(REPORT, report_json(outcome.report))
        job.update(status=outcome.status, finished=time.time(), error=outcome.error, outputs=outcome.outputs)
    except JobError as exc:
        print(f"gradfx: {exc}", file=sys.stderr)
    where = f": wrote {', '.join(outcome.outputs)}" if outcome.outputs else ""
    print(f"gradfx: job {job.id} {outcome.status}{where}" + (f" ({outcome.error})" if outcome.error else ""),
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = Job(Path(args[0]))
    cancel = CancelToken()

    def on_signal(signum: int, frame: Any) -> None:
        cancel.cancel()
        print(f"gradfx: job {job.id}: {signal_name(signum)}: cancelling after the current step", file=sys.stderr,
              flush=True)

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        request = job.request
        state = job.update(status="running", worker=identify().to_dict(), started=time.time(), error=None)
    except JobError as exc:
        print(f"gradfx: {exc}", file=sys.stderr)
        return 2
    outcome = work(job, request, cancel, resume=bool(state.get("resumes")))
    record(job, outcome)
    return 0 if outcome.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
