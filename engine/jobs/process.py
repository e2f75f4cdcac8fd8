"""A background job's processes: who they are (the pid and when that process started, so a pid the system
reused for another process is not taken for the job's), whether they still live, starting one detached from
the terminal, and a signal's name. Nothing here imports TensorFlow.

A detached process gets a session of its own (``setsid``: no controlling terminal, so closing the terminal
or dropping the SSH connection sends it no SIGHUP), stdin from ``/dev/null`` and its output appended to the
job's log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessId:
    """A process as a job records it: its pid and its start time (Linux: the boot's id and the clock ticks
    from boot to the start; elsewhere ``ps``'s start time; None where neither is known)."""

    pid: int
    start: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_dict(cls, data: Any) -> ProcessId | None:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return None
        return cls(data["pid"], data.get("start"))


def identify(pid: int | None = None) -> ProcessId:
    """The :class:`ProcessId` of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return ProcessId(pid, _state_and_start(pid)[1])


def alive(proc: ProcessId | None) -> bool:
    """Whether ``proc`` still runs: its pid exists, is not a zombie, and started when ``proc`` says (else the
    system gave the pid to another process after it ended)."""
    if proc is None:
        return False
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has the pid now: not the job's
        return False
    state, start = _state_and_start(proc.pid)
    if state == "Z":  # ended, not yet reaped by its parent
        return False
    return proc.start is None or start is None or start == proc.start


def _state_and_start(pid: int) -> tuple[str | None, str | None]:
    """(state letter, start time) of ``pid`` from ``/proc`` (Linux), else from ``ps``; (None, None) if
    neither says."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        text = ""
    if text:
        fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
        try:
            boot = _BOOT_ID.read_text().strip()
        except OSError:
            boot = "?"
        return fields[0], f"{boot}:{fields[19]}"
    try:
        out = subprocess.run(["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    if not out:
        return None, None
    state, _, start = out.partition(" ")
    return state[:1], " ".join(start.split()) or None


def spawn(argv: Sequence[str], *, cwd: str | os.PathLike, log: Path) -> subprocess.Popen:
    """Start ``argv`` detached: a session of its own (no controlling terminal: it outlives the terminal and
    ignores its hang-up), stdin from /dev/null, stdout and stderr appended to ``log`` (created 0600). A
    thread reaps it should this process outlive it (the TUI), so it never lingers as a zombie."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                start_new_session=True, close_fds=True)
    finally:
        os.close(fd)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def send(proc: ProcessId | None, signum: int) -> bool:
    """Send ``signum`` to ``proc`` if it is still that process; whether it was sent."""
    if not alive(proc):
        return False
    assert proc is not None
    try:
        os.kill(proc.pid, signum)
    except OSError:
        return False
    return True


def signal_name(signum: int) -> str:
    """``SIGKILL`` for 9; ``signal 64`` for a number without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
