"""The jobs' state folder and one job's record in it.

The folder is ``$GRADFX_JOBS_DIR`` if set, else ``$XDG_STATE_HOME/gradfx/jobs`` (default
``~/.local/state/gradfx/jobs``), created 0700; every file in it is written atomically and 0600 (a shared GPU
box has other users). A job is a folder named by its id:

- ``job.json``: what to run (kind ``run``, ``chain`` or ``batch``, its engine arguments, the working folder,
  the devices it queues on, a one-line description), written once;
- ``status.json``: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``, the processes (supervisor
  and worker: pid and start time), times, the error, the outputs; changed under ``lock`` (an flock);
- ``progress.json`` and ``preview.png``: the latest progress event and image (:mod:`.progressfile`);
- ``report.json``: the run report when it finished; ``log``: the processes' output;
- ``checkpoint/``: the solver state a resume starts from (:mod:`gradfx.engine.running.checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import GradfxError, JobError, one_line
from ..images import atomic
from .process import ProcessId, alive

#: the environment variable that moves the state folder
ENV = "GRADFX_JOBS_DIR"
STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: statuses a job keeps for good (until resumed)
FINISHED = ("done", "failed", "cancelled")
REQUEST, STATUS, PROGRESS, PREVIEW, REPORT, LOG, LOCK = (
    "job.json", "status.json", "progress.json", "preview.png", "report.json", "log", "lock")
CHECKPOINT = "checkpoint"
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def root() -> Path:
    """The state folder (not created): ``$GRADFX_JOBS_DIR``, else ``$XDG_STATE_HOME/gradfx/jobs``, else
    ``~/.local/state/gradfx/jobs``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"  # relative: ignored (XDG)
    return base / "gradfx" / "jobs"


def ensure_root() -> Path:
    """The state folder, created 0700 if missing (and made 0700 if it is looser); a one-line error when it
    cannot be (a full disk, a file in the way)."""
    folder = root()
    try:
        folder.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(PRIVATE_DIR)
    except OSError as exc:
        raise JobError(f"the jobs' state folder {str(folder)!r} cannot be created ({one_line(exc)}); free disk "
                       f"space, or set {ENV} to another folder") from None
    return folder


def write_private(path: Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write a state file atomically, 0600: text, bytes or ``content(tmp_path)``. A full disk or a deleted
    folder raises :class:`~gradfx.engine.errors.OutputError`."""
    if callable(content):
        return atomic.atomic_write(path, content, mode=PRIVATE_FILE)
    data = content.encode() if isinstance(content, str) else content
    return atomic.atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), mode=PRIVATE_FILE)


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, default=str) + "\n"


class Job:
    """One job's folder; see the module docstring. Reading never changes anything but :meth:`refresh`, which
    records a job whose processes are gone as failed."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.id = self.folder.name
        self._request: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    # --- reading ---------------------------------------------------------------------------------------------
    def read_json(self, name: str) -> Any:
        path = self.folder / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if not self.folder.is_dir():
                raise self.gone() from None
            return None
        except (OSError, ValueError) as exc:
            raise JobError(f"job {self.id}: {path} is unreadable ({one_line(exc)}); remove the job with "
                           f"'gradfx jobs clean {self.id}'") from None

    def gone(self) -> JobError:
        """The error for a job whose state folder was deleted."""
        return JobError(f"job {self.id}: its state folder {str(self.folder)!r} was deleted; a run still going "
                        "writes its output all the same, but can no longer be followed or resumed")

    @property
    def request(self) -> dict[str, Any]:
        """``job.json``: kind, spec, cwd, devices, what, created."""
        if self._request is None:
            data = self.read_json(REQUEST)
            if not isinstance(data, dict) or "kind" not in data:
                raise JobError(f"job {self.id}: {self.folder / REQUEST} is missing or damaged; remove the job "
                               f"with 'gradfx jobs clean {self.id}'")
            self._request = data
        return self._request

    def state(self) -> dict[str, Any]:
        """``status.json`` as written (see :meth:`refresh` for one that checks the processes)."""
        data = self.read_json(STATUS)
        return data if isinstance(data, dict) else {"status": "queued"}

    def refresh(self) -> dict[str, Any]:
        """The status, with a queued or running job whose processes are all gone recorded as failed, with the
        reason (killed, or the machine restarted) and the log's last line."""
        state = self.state()
        if state.get("status") in FINISHED or self.processes_alive(state):
            return state
        with self.locked():  # the launcher holds the lock until it has recorded the process it started
            state = self.state()
            if state.get("status") in FINISHED or self.processes_alive(state):
                return state
            if state.get("cancel_requested"):  # SIGTERM came before a process could say how it ended
                return self.write_state({**state, "status": "cancelled", "finished": time.time(),
                                         "error": "cancelled before its process could save anything"})
            worker = ProcessId.from_dict(state.get("worker"))
            what = f"its process (pid {worker.pid})" if worker else "its queue process"
            reason = (f"{what} is gone without finishing: killed (SIGKILL, the out-of-memory killer) or the machine "
                      "restarted")
            return self.write_state({**state, "status": "failed", "error": self.with_log(reason),
                                      "finished": time.time()})

    @staticmethod
    def processes_alive(state: dict[str, Any]) -> bool:
        return any(alive(ProcessId.from_dict(state.get(k))) for k in ("supervisor", "worker"))

    def log_tail(self, lines: int = 1) -> list[str]:
        """The log's last non-empty lines."""
        try:
            with open(self.folder / LOG, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(fh.tell() - 8192, 0))
                text = fh.read().decode(errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if line.strip()][-lines:]

    def with_log(self, reason: str) -> str:
        """``reason``, and the log's last line if there is one."""
        tail = self.log_tail()
        return f"{reason}; its log ends: {one_line(tail[0])}" if tail else reason

    def report(self) -> dict[str, Any] | None:
        data = self.read_json(REPORT)
        return data if isinstance(data, dict) else None

    # --- writing ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the job's lock (the status is read, changed and written under it)."""
        import fcntl

        try:
            fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except FileNotFoundError:
            raise self.gone() from None
        except OSError as exc:
            raise JobError(f"job {self.id}: cannot lock {self.folder / LOCK} ({one_line(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write_state(self, state: dict[str, Any]) -> dict[str, Any]:
        self.write(STATUS, _json(state))
        return state

    def write(self, name: str, content: str | bytes | Callable[[Path], None]) -> None:
        """Write a state file (0600, atomically); a deleted folder or a full disk is a :class:`JobError`."""
        try:
            write_private(self.folder / name, content)
        except (GradfxError, OSError) as exc:
            if not self.folder.is_dir():
                raise self.gone() from None
            why = str(exc) if isinstance(exc, GradfxError) else \
                f"{self.folder / name}: cannot write ({one_line(exc)}); free disk space"
            raise JobError(f"job {self.id}: {why}") from None

    def update(self, **changes: Any) -> dict[str, Any]:
        """Change fields of the status under the lock; returns the new status."""
        with self.locked():
            return self.write_state({**self.state(), **changes})

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def create(request: dict[str, Any], status: dict[str, Any]) -> Job:
    """A new job folder holding ``request`` and ``status``; it appears whole (made under a temporary name,
    then renamed to its id), so a reader never sees a job without its ``job.json``."""
    base = ensure_root()
    for _ in range(100):
        job_id = secrets.token_hex(3)
        if (base / job_id).exists():
            continue
        tmp = base / f".new-{job_id}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(mode=PRIVATE_DIR)
            for name, data in ((REQUEST, {**request, "id": job_id}), (STATUS, status)):
                write_private(tmp / name, _json(data))
            os.rename(tmp, base / job_id)
        except (OSError, GradfxError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError) and (base / job_id).exists():
                continue  # another job took the id meanwhile
            raise JobError(f"cannot record a new job in {str(base)!r} ({one_line(exc)}); free disk space, or set "
                           f"{ENV} to another folder") from None
        return Job(base / job_id)
    raise JobError(f"cannot find a free job id in {str(base)!r}; remove finished jobs with 'gradfx jobs clean'")


def all_jobs() -> list[Job]:
    """Every job in the state folder, oldest first (by the time it was last queued)."""
    folder = root()
    if not folder.is_dir():
        return []
    jobs = []
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != "locks":
            jobs.append(Job(entry))

    def queued_at(job: Job) -> float:
        try:
            return float(job.state().get("queued_at") or 0)
        except GradfxError:
            return 0.0

    return sorted(jobs, key=lambda j: (queued_at(j), j.id))


def find(job_id: str) -> Job:
    """The job whose id is ``job_id`` or starts with it (a unique prefix)."""
    folder = root()
    if not folder.is_dir():
        raise JobError(f"no job {job_id!r}: the jobs' state folder {str(folder)!r} does not exist (deleted, or "
                       f"{ENV} points elsewhere)")
    text = job_id.strip().lower()
    if text and (folder / text / REQUEST).is_file():
        return Job(folder / text)
    matches = [j for j in all_jobs() if text and j.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise JobError(f"job id {job_id!r} is ambiguous ({', '.join(j.id for j in matches)}); give more of it")
    raise JobError(f"no job {job_id!r} in {str(folder)!r}; 'gradfx jobs' lists them")
