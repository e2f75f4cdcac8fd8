"""One job at a time per device: a queued job waits for its turn and for the devices' lock files.

Each device has a lock file in ``STATE/locks/`` (``cpu.lock``, ``gpu0.lock``...), held with ``flock`` by the
job running on it: by its supervisor while it waits and starts the worker, then by the worker, which inherits
the open file. The kernel lets go of an flock when the last process holding it ends, so a job killed by any
signal, or a reboot, never leaves a stale lock behind. Turns go in the order the jobs were queued: a job
tries the locks only when no job queued before it on one of its devices is still waiting.

Which devices: ``cpu``; ``gpu:N`` its GPU; none, ``auto`` or ``gpu``: the first GPU, else the CPU (as a run
chooses); a batch without ``--device`` runs a worker per GPU, so it takes every GPU. GPUs are counted without
TensorFlow (the NVIDIA driver's ``/proc`` entries and ``CUDA_VISIBLE_DEVICES``), so a job queues at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import JobError, one_line
from ..models.device import parse_device
from .process import ProcessId, alive
from .store import PRIVATE_DIR, PRIVATE_FILE, Job, all_jobs, root

#: seconds between looks at the queue while waiting
POLL = 0.5
_NVIDIA = Path("/proc/driver/nvidia/gpus")


def visible_gpus() -> int:
    """How many GPUs a run here would see (without importing TensorFlow)."""
    try:
        count = sum(1 for _ in _NVIDIA.iterdir())
    except OSError:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return count
    listed = [v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")]
    return min(count, len(listed))


def device_keys(device: str | None, *, every_gpu: bool = False) -> list[str]:
    """The lock names of the devices a job on ``device`` uses; ``every_gpu``: a batch without a device, which
    runs a worker per GPU. Bad device syntax is the run's own one-line error."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return ["cpu"]
    gpus = visible_gpus()
    if kind == "gpu" and index is not None:
        return [f"gpu{index}"]
    if not gpus:
        return ["cpu"] if kind == "auto" else ["gpu0"]  # gpu without one: the run says it is not there
    return [f"gpu{i}" for i in range(gpus)] if every_gpu and kind == "auto" else ["gpu0"]


def _waiting_before(job: Job, keys: list[str], queued_at: float) -> Job | None:
    """A job queued before ``job`` on one of ``keys`` that is still waiting (its supervisor alive), or None."""
    for other in all_jobs():
        if other.id == job.id:
            continue
        try:
            state = other.state()
            if state.get("status") != "queued" or not set(other.request.get("devices", ())) & set(keys):
                continue
        except JobError:
            continue
        if (float(state.get("queued_at") or 0), other.id) < (queued_at, job.id) and \
                alive(ProcessId.from_dict(state.get("supervisor"))):
            return other
    return None


def _try_lock(keys: list[str]) -> list[int] | None:
    """Open and flock every key's lock file without waiting: their descriptors, or None (all let go) if one
    is held."""
    import fcntl

    folder = root() / "locks"
    try:
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create the device locks folder {str(folder)!r} ({one_line(exc)}); free disk "
                       "space") from None
    fds: list[int] = []
    for key in sorted(keys):  # always in the same order: two jobs never hold one each of a pair
        fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        fds.append(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for held in fds:
                os.close(held)
            return None
    return fds


def wait_turn(job: Job, keys: list[str], queued_at: float, cancelled: Callable[[], bool],
              poll: float = POLL) -> list[int] | None:
    """Wait until ``job`` may run on ``keys``: the descriptors of the held locks (pass them on to the worker),
    or None if ``cancelled()`` became true while waiting."""
    while not cancelled():
        if _waiting_before(job, keys, queued_at) is None:
            fds = _try_lock(keys)
            if fds is not None:
                return fds
        time.sleep(poll)
    return None


def holder(keys: list[str], job: Job) -> Job | None:
    """The job running on one of ``keys`` (what a queued job waits for), if one is known."""
    for other in all_jobs():
        if other.id == job.id:
            continue
        try:
            if other.state().get("status") == "running" and set(other.request.get("devices", ())) & set(keys):
                return other
        except JobError:
            continue
    return None
