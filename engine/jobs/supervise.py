"""A job's supervisor: ``python -m gradfx.engine.jobs.supervise JOBDIR``, the detached process a command
starts for a job. It imports no TensorFlow and does three things:

1. waits for the job's turn on its devices (:func:`.queue.wait_turn`; SIGTERM meanwhile: ``cancelled``);
2. starts the worker (:mod:`.worker`), which inherits the devices' locks, and records its pid;
3. waits for it; a worker that ended without recording how (killed by a signal, SIGKILL from the
   out-of-memory killer, a crash) is recorded here as failed with the reason, so ``gradfx jobs resume``
   can take it up. SIGTERM to the supervisor is passed on to the worker (a shutdown: it saves what it has).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import JobError
from .process import identify, python_module, signal_name
from .queue import wait_turn
from .store import FINISHED, Job

_KILLED_HINT = {signal.SIGKILL: " (the kernel's out-of-memory killer sends it too: a smaller --size, tile or "
                                "batch needs less memory)"}


def reason(rc: int, state: dict[str, Any], job: Job) -> tuple[str, str]:
    """(status, error) for a worker that ended with return code ``rc`` without recording how."""
    pid = (state.get("worker") or {}).get("pid", "?")
    if rc < 0:
        sig = -rc
        if sig in (signal.SIGTERM, signal.SIGINT) and state.get("cancel_requested"):
            return "cancelled", "cancelled before its process could save anything"
        return "failed", f"its process (pid {pid}) was killed by {signal_name(sig)}{_KILLED_HINT.get(sig, '')}"
    return "failed", job.with_log(f"its process (pid {pid}) ended (status {rc}) without finishing")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = Job(Path(args[0]))
    started: list[subprocess.Popen] = []
    cancelled = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if started:
            started[0].send_signal(signum)
        else:
            cancelled.set()

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        request, state = job.request, job.state()
        fds = wait_turn(job, list(request["devices"]), float(state.get("queued_at") or 0), cancelled.is_set)
        if fds is None:
            job.update(status="cancelled", finished=time.time(), error="cancelled while queued")
            return 0
        with job.locked():  # a reader never sees the job between two recorded processes
            proc = subprocess.Popen(python_module("gradfx.engine.jobs.worker", str(job.folder)), pass_fds=fds,
                                    stdin=subprocess.DEVNULL, cwd=request["cwd"] if os.path.isdir(request["cwd"])
                                    else None)
            started.append(proc)
            job.write_state({**job.state(), "worker": identify(proc.pid).to_dict()})
        for fd in fds:  # the worker holds the locks now; they go when it ends
            os.close(fd)
        rc = proc.wait()
        with job.locked():
            state = job.state()
            if state.get("status") not in FINISHED:
                status, error = reason(rc, state, job)
                job.write_state({**state, "status": status, "error": error, "finished": time.time()})
                print(f"gradfx: job {job.id} {status}: {error}", file=sys.stderr, flush=True)
    except JobError as exc:  # the state folder was deleted or cannot be written: nothing more to record
        print(f"gradfx: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
