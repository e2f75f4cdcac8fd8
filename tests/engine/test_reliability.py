"""Interruption, resume, non-finite values and out-of-memory, on a tiny VGG16 effect with random weights."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import HERE, TinyPlugin
from PIL import Image as PILImage

from gradfx.engine import Effect, Int, Problem
from gradfx.engine.errors import GradfxError
from gradfx.engine.objectives import Objective
from gradfx.engine.progress import CancelToken
from gradfx.engine.running.api import resume_run, run
from gradfx.tui.cli import main

#: many small Adam ascent steps (its state is checkpointed) over two octaves with lost-detail re-injection
SLOW = {"octaves": 2, "optimizer": "adam", "channel": 4}


@pytest.fixture
def reg(registry):
    registry.add_plugin(TinyPlugin(), "slow")
    return registry


@pytest.fixture
def photo(tmp_path, make_image):
    path = tmp_path / "photo.png"
    PILImage.fromarray((make_image(48, 56) * 255).astype(np.uint8)).save(path)
    return path


def test_resume_after_cancel_gives_the_same_bytes(reg, photo, tmp_path):
    full = run("tiny-dream", photo, params={"steps": 6, **SLOW}, weights="random", seed=5)
    token = CancelToken()

    def stop_at_8(ev):  # stage 2, step 2 of 6: resumes across an octave boundary
        if ev.total_step == 8:
            token.cancel()

    part = run("tiny-dream", photo, params={"steps": 6, **SLOW}, weights="random", seed=5, progress=stop_at_8,
               cancel=token, checkpoint=tmp_path / "ckpt", checkpoint_every=3)
    assert part.partial and part.report["status"] == "cancelled"
    assert not np.array_equal(part.image, full.image)
    resumed, spec = resume_run(tmp_path / "ckpt")
    assert spec["effect"] == "tiny-dream" and spec["params"]["optimizer"] == "adam" and not resumed.partial
    assert resumed.image.tobytes() == full.image.tobytes()
    assert resumed.report["losses"] == full.report["losses"]
    assert json.loads((tmp_path / "ckpt" / "run.json").read_text())["done"] is True


def test_cli_resume_checks_its_output_before_compute_and_keeps_existing_files(reg, photo, tmp_path, capsys):
    token = CancelToken()
    token.cancel()  # stops after the first step, leaving a checkpoint to resume
    ckpt = tmp_path / "ckpt"
    run("tiny-dream", photo, params={"steps": 4}, weights="random", cancel=token, checkpoint=ckpt,
        checkpoint_every=1)
    mine = tmp_path / "mine.png"
    mine.write_bytes(photo.read_bytes())
    for argv, fragment in (([str(mine)], "exists; pass --overwrite"), ([str(tmp_path / "o.txt")], ".txt"),
                           ([str(tmp_path / "no" / "o.png")], "does not exist")):
        assert main(["resume", str(ckpt), "-q", "-o", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gradfx: error:") and fragment in err and "\n" not in err, err
        assert json.loads((ckpt / "run.json").read_text())["done"] is False  # refused before any compute
    assert mine.read_bytes() == photo.read_bytes()  # -o used to replace an existing file without asking
    assert main(["resume", str(ckpt), "-q", "-o", str(mine), "--overwrite"]) == 0
    assert mine.read_bytes() != photo.read_bytes()


def test_a_checkpoint_path_that_is_a_file_is_a_one_line_error(reg, photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["run", "tiny-dream", str(photo), "-o", str(out), "--weights", "random", "-q",
                 "--checkpoint", str(photo)]) == 2  # was a FileExistsError traceback
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradfx: error: checkpoint folder") and "choose another folder" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("damage, fragment", [
    (lambda ck: (ck / "input.npz").write_text("junk"), "input.npz' is damaged or truncated"),
    (lambda ck: (ck / "state-0.npz").write_bytes(b"PK\x03\x04 cut short"), "state-0.npz' is damaged or truncated"),
    (lambda ck: (ck / "run.json").write_text('{"effect": "tiny-dream"}'), "run.json' is damaged (no params"),
])
def test_a_damaged_checkpoint_is_a_one_line_error(reg, photo, tmp_path, capsys, damage, fragment):
    token = CancelToken()
    token.cancel()
    ckpt = tmp_path / "ckpt"
    run("tiny-dream", photo, params={"steps": 4}, weights="random", cancel=token, checkpoint=ckpt,
        checkpoint_every=1)
    damage(ckpt)
    assert main(["resume", str(ckpt), "-q", "-o", str(tmp_path / "o.png")]) == 2  # were raw numpy tracebacks
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradfx: error: checkpoint") and fragment in err and "start the run again" in err, err


def test_a_checkpoint_interval_below_one_names_the_option(reg, photo, tmp_path, capsys):
    assert main(["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "--weights", "random", "-q",
                 "--checkpoint", str(tmp_path / "ck"), "--checkpoint-every", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--checkpoint-every" in err and "\n" not in err, err  # it said only "checkpoint interval 0"


def test_a_checkpoint_interval_without_a_checkpoint_folder_is_refused_not_ignored(reg, photo, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["run", "tiny-dream", str(photo), "-o", str(out), "--weights", "random", "-q",
                 "--checkpoint-every", "5"]) == 2  # it ran, and kept no checkpoint
    assert capsys.readouterr().err.strip() == (
        "gradfx: error: --checkpoint-every sets how often --checkpoint DIR saves the run; add --checkpoint DIR, or "
        "leave --checkpoint-every out")
    assert not out.exists()


def test_resume_of_a_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(GradfxError, match="not a gradfx checkpoint"):
        resume_run(tmp_path)


def test_sigint_writes_partial_output_and_exits_130_then_resume_finishes(reg, photo, tmp_path):
    out, ckpt, report = tmp_path / "out.png", tmp_path / "ckpt", tmp_path / "report.json"
    script = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from helpers import TinyPlugin
        from gradfx.engine.registry import get_registry
        from gradfx.tui.cli import main
        get_registry().add_plugin(TinyPlugin(), "slow")
        sys.exit(main(["run", "tiny-dream", {str(photo)!r}, "-o", {str(out)!r}, "-p", "steps=400", "-q",
                       "-p", "octaves=2", "-p", "optimizer=adam", "-p", "channel=4",
                       "--weights", "random", "--seed", "5", "--checkpoint", {str(ckpt)!r},
                       "--checkpoint-every", "10", "--report", {str(report)!r}]))
    ''')
    env = {**os.environ, "GRADFX_PLUGINS": "none"}
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(ckpt.glob("state-*.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    with PILImage.open(out) as im:
        im.load()
        assert im.size == (56, 48)
    rep = json.loads(report.read_text())
    assert rep["partial"] is True and rep["status"] == "cancelled" and 0 < rep["steps"] < 800
    assert not list(tmp_path.glob("*.tmp*")), "no temporary files left behind"

    assert main(["resume", str(ckpt), "-q"]) == 0
    done = json.loads(report.read_text())
    assert done["partial"] is False and done["steps"] == 800


class Exploding(Effect):
    name = "exploding"
    summary = "objective turns NaN after three steps"
    params = ()
    model = "vgg16"

    def build(self, ctx, params):
        calls = tf.Variable(0)

        def fn(f, c):
            calls.assign_add(1)
            value = tf.reduce_mean(f["block1_conv1"])
            return value + tf.where(calls > 3, np.nan, 0.0)  # no NaN in the gradient before step 4

        return Problem(Objective(fn, "explodes", {"block1_conv1"}), init=ctx.input.rgb, maximize=True, steps=10,
                       lr=0.01, octaves=2, label="octave")


class Hungry(Effect):
    """Raises ResourceExhaustedError while tracing any input larger than ``limit`` pixels a side."""

    name = "hungry"
    summary = "runs out of memory above a size"
    params = (Int("limit", 64, "largest side that fits"),)
    model = "vgg16"

    def build(self, ctx, params):
        def fn(f, c):
            if max(c.image.shape[1:3]) > params["limit"]:
                raise tf.errors.ResourceExhaustedError(None, None, "injected OOM")
            return tf.reduce_mean(f["block1_conv1"][..., 3])

        return Problem(Objective(fn, "hungry", {"block1_conv1"}), init=ctx.input.rgb, maximize=True, steps=3,
                       lr=0.01)


def test_non_finite_loss_keeps_last_finite_image_and_reports_step_and_stage(registry, photo, tmp_path, capsys):
    registry.add_plugin(TinyPlugin(Exploding(), Hungry()), "faulty")
    res = run("exploding", photo, weights="random")
    assert res.report["status"] == "non-finite" and res.partial
    assert "step 4 of stage 1" in res.report["messages"][0]
    assert np.all(np.isfinite(res.image)) and res.report["steps"] == 3
    out = tmp_path / "nan.png"
    assert main(["run", "exploding", str(photo), "-o", str(out), "--weights", "random", "-q"]) == 3
    assert "non-finite at step 4" in capsys.readouterr().err and out.is_file()


def test_out_of_memory_retries_tiled_then_gives_up_clearly(registry, tmp_path, make_image):
    registry.add_plugin(TinyPlugin(Exploding(), Hungry()), "faulty")
    big = make_image(128, 128)
    res = run("hungry", big, params={"limit": 64}, weights="random")
    assert any("retrying with 64 px tiles" in w for w in res.report["warnings"])
    assert res.report["steps"] == 3 and res.image.shape == (128, 128, 3)
    with pytest.raises(GradfxError, match="out of device memory even with 64 px tiles"):
        run("hungry", big, params={"limit": 16}, weights="random")
