"""gradfx batch's Ctrl-C handling and closing lines (no compute)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from gradfx.engine.batch import BatchSummary
from gradfx.tui.commands.batch import Interrupts, summarize


def test_ctrl_c_stops_then_abandons_then_aborts(capsys):
    with Interrupts() as keys:
        handler = signal.getsignal(signal.SIGINT)
        handler(signal.SIGINT, None)
        assert keys.stop.cancelled and not keys.cancel.cancelled  # the items in flight finish
        handler(signal.SIGINT, None)
        assert keys.cancel.cancelled  # abandoned
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is not handler  # the old handler is back
    err = capsys.readouterr().err
    assert "finishing the items in flight" in err and "abandoning" in err


def test_summary_names_failures_and_says_how_to_resume(capsys):
    s = BatchSummary(Path("out"), Path("out/manifest.jsonl"), total=5, done=["a.png"], failed=[("b.png", "corrupt")],
                     skipped=["c.png"], interrupted=True, seconds=3.0)
    assert summarize(s, ["batch", "deepdream", "my photos", "-o", "out"]) == 130
    err = capsys.readouterr().err
    assert "gradfx: failed: b.png: corrupt" in err
    assert "1 done, 1 failed, 1 already done, 2 not run of 5" in err
    assert "to resume, run the same command again: gradfx batch deepdream 'my photos' -o out" in err
    s.interrupted = False
    assert summarize(s, ["batch"]) == 1
    assert summarize(BatchSummary(Path("o"), Path("o/m"), total=1, done=["a"]), ["batch"], quiet=True) == 0
    assert "retry the failed items" in capsys.readouterr().err
