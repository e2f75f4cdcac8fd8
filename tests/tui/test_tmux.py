"""The real ``gradfx tui`` in tmux, driven with send-keys (tests/tui/tmux_drive.sh, tests/tui/tmux_jobs.sh);
skipped without tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _drive(script: str, tmp_path: Path, *args: str) -> str:
    """Run a tmux script against the interpreter that runs the suite; its stdout."""
    # `python` and `gradfx` on PATH are someone else's (the system's, without PIL, when the suite runs as
    # venv/bin/python -m pytest): the script must drive the interpreter that runs the suite
    for name in ("python", "python3", "gradfx"):
        (tmp_path / name).write_text("#!/bin/sh\necho \"not this $0\" >&2; exit 97\n")
        (tmp_path / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "GRADFX_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(HERE / script), *args], capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_tmux
def test_drive_gradfx_tui_in_tmux(tmp_path):
    assert "tmux_drive: ok" in _drive("tmux_drive.sh", tmp_path, "80x24")


# end to end, minutes on a busy machine: CI's slow phase runs it; the default run keeps the pieces fast
# (test_jobs_cli: detached processes in their own session survive SIGHUP; test_jobs_tui: a new app reattaches
# to a TUI's job and two apps follow it to its end; test_drive_gradfx_tui_in_tmux: the real TUI in tmux)
@pytest.mark.slow
@needs_tmux
def test_a_job_started_in_the_tui_outlives_its_terminal_and_two_new_tuis_follow_it(tmp_path):
    assert "tmux_jobs: ok" in _drive("tmux_jobs.sh", tmp_path)
