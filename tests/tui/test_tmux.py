"""The real ``gradfx tui`` in tmux, driven with send-keys (tests/tui/tmux_drive.sh); skipped without tmux."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tmux_drive.sh")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_drive_gradfx_tui_in_tmux():
    done = subprocess.run(["bash", str(SCRIPT), "80x24"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tmux_drive: ok" in done.stdout
