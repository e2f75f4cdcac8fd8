"""Background jobs: runs that do not depend on the terminal that started them.

``gradfx run|chain|batch ... --detach`` and the TUI record a job in the state folder (:mod:`.store`) and start
its detached supervisor (:mod:`.supervise`), which waits for the job's turn on its devices (:mod:`.queue`),
starts the worker (:mod:`.worker`) that runs the job's task (:mod:`.tasks`) with a checkpoint, and records a
worker that was killed. The worker writes its progress and preview (:mod:`.progressfile`), its report and how
it ended; ``gradfx jobs`` and the TUI read them back. :mod:`.control` submits, cancels, resumes and removes
jobs. Nothing here imports TensorFlow but the worker's task.
"""

from __future__ import annotations

from ..errors import JobError
from .control import cancel, clean, resume, submit
from .progressfile import Progress, read_preview, shown_fraction
from .progressfile import read as read_progress
from .queue import device_keys, holder
from .store import ENV, FINISHED, STATUSES, Job, all_jobs, ensure_root, find, root

__all__ = ["ENV", "FINISHED", "STATUSES", "Job", "JobError", "Progress", "all_jobs", "cancel", "clean", "device_keys",
           "ensure_root", "find", "holder", "read_preview", "read_progress", "resume", "root", "shown_fraction",
           "submit"]
