"""The real ``gradfx tui`` in tmux, driven with send-keys (tests/tui/tmux_drive.sh); skipped without tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tmux_drive.sh")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_drive_gradfx_tui_in_tmux(tmp_path):
    # `python` and `gradfx` on PATH are someone else's (the system's, without PIL, when the suite runs as
    # venv/bin/python -m pytest): the script must drive the interpreter that runs the suite
    for name in ("python", "python3", "gradfx"):
        (tmp_path / name).write_text("#!/bin/sh\necho \"not this $0\" >&2; exit 97\n")
        (tmp_path / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "GRADFX_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), "80x24"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tmux_drive: ok" in done.stdout
