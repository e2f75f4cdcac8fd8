"""Starting, cancelling, resuming and removing jobs: what ``gradfx run|chain|batch --detach``, ``gradfx jobs``
and the TUI call. Each returns at once; the work happens in the job's detached processes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import JobError, one_line
from ..version import __version__
from .process import ProcessId, identify, python_module, send, spawn
from .progressfile import clear as clear_progress
from .store import FINISHED, LOG, Job, all_jobs, create
from .tasks import TASKS


def submit(kind: str, spec: dict[str, Any], *, what: str, devices: Sequence[str],
           plugins: Iterable[str] = (), source: str = "cli") -> Job:
    """Record a job (``kind`` run, chain or batch with its task's ``spec``, run in the working folder) and start
    its detached supervisor, which queues it on ``devices`` (:func:`.queue.device_keys`); returns at once.
    ``plugins``: modules to load as plugins first (``gradfx tui --plugin``); ``source``: who made it (``cli``,
    ``tui``: the TUI reattaches to its own)."""
    if kind not in TASKS:
        raise JobError(f"unknown job kind {kind!r}; one of {', '.join(TASKS)}")
    now = time.time()
    request = {"kind": kind, "what": what, "spec": spec, "devices": list(devices), "cwd": os.getcwd(),
               "plugins": list(plugins), "source": source, "created": now, "gradfx": __version__}
    job = create(request, {"status": "queued", "queued_at": now, "resumes": 0})
    _start(job, {})
    return job


def _start(job: Job, changes: dict[str, Any]) -> None:
    """Apply ``changes`` to the status and start the job's supervisor, recording it under the lock (no reader
    sees a queued job without its process)."""
    with job.locked():
        state = job.write_state({**job.state(), **changes})
        try:
            proc = spawn(python_module("gradfx.engine.jobs.supervise", str(job.folder)),
                         cwd=job.request["cwd"] if os.path.isdir(job.request["cwd"]) else job.folder,
                         log=job.folder / LOG)
        except OSError as exc:
            job.write_state({**state, "status": "failed", "error": f"cannot start ({one_line(exc)})"})
            raise JobError(f"job {job.id} cannot start its process ({one_line(exc)})") from None
        job.write_state({**state, "supervisor": identify(proc.pid).to_dict()})


def cancel(job: Job) -> dict[str, Any]:
    """Ask a queued or running job to stop (SIGTERM: it stops after its current step and writes the image so
    far, as Ctrl-C does); returns its status. A finished job is a :class:`JobError`."""
    state = job.refresh()
    if state.get("status") in FINISHED:
        raise JobError(f"job {job.id} is already {state['status']}; nothing to cancel")
    state = job.update(cancel_requested=True)
    for who in ("supervisor", "worker"):  # the supervisor passes it on to its worker
        if send(ProcessId.from_dict(state.get(who)), signal.SIGTERM):
            break
    return job.refresh()


def resume(job: Job) -> Job:
    """Start a failed or cancelled job again from its checkpoint (a batch: its manifest); returns at once."""
    state = job.refresh()
    status = state.get("status")
    if status in ("queued", "running"):
        raise JobError(f"job {job.id} is still {status}; 'gradfx jobs follow {job.id}' shows it")
    if status == "done":
        raise JobError(f"job {job.id} is done; nothing to resume")
    clear_progress(job)
    _start(job, {"status": "queued", "queued_at": time.time(), "resumes": int(state.get("resumes") or 0) + 1,
                 "error": None, "finished": None, "started": None, "cancel_requested": False, "worker": None,
                 "supervisor": None, "outputs": []})
    return job


def clean(jobs: Iterable[Job] | None = None, *, everything: bool = False) -> list[Job]:
    """Remove finished jobs' folders: ``jobs`` (each must be finished), else every done job, and with
    ``everything`` the failed and cancelled ones too (they can no longer be resumed). Outputs are elsewhere
    and stay. Returns the jobs removed."""
    chosen = list(jobs) if jobs is not None else all_jobs()
    removed = []
    for job in chosen:
        try:
            status = job.refresh().get("status")
        except JobError:  # damaged (no job.json): only when named
            status = "failed" if jobs is not None else None
        if status not in FINISHED:
            if jobs is not None:
                raise JobError(f"job {job.id} is still {status}; cancel it first ('gradfx jobs cancel {job.id}')")
            continue
        if jobs is None and status != "done" and not everything:
            continue
        job.remove()
        removed.append(job)
    return removed
