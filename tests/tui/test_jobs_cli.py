"""``gradfx run|chain|batch --detach`` and ``gradfx jobs`` with real detached processes: a job outlives its
terminal, shows in the list, is followed, queued per device, cancelled, killed with SIGKILL and resumed to
the bytes an uninterrupted run writes, and keeps going when its state folder is deleted. DeepDream on VGG16's
early layers with seeded random weights, on a 48 x 56 image; every wait polls for a state."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from gradfx.engine import jobs
from gradfx.engine.jobs import process
from gradfx.tui.cli import main

#: a deepdream run long enough to be caught midway (checkpoints every 10 steps)
RUN = ["deepdream", "in.png", "--model", "vgg16", "--weights", "random", "--device", "cpu", "--seed", "4",
       "-p", "layers=block3_conv1:1", "-p", "octaves=1"]
DEADLINE = 300


@pytest.fixture
def state(tmp_path, monkeypatch, make_image):
    """A private state folder and a working folder with ``in.png``; every job process left is killed."""
    folder = tmp_path / "state"
    monkeypatch.setenv(jobs.ENV, str(folder))
    monkeypatch.setenv("GRADFX_PLUGINS", "none")
    monkeypatch.chdir(tmp_path)
    PILImage.fromarray((make_image(48, 56, "blobs", seed=2) * 255).astype(np.uint8)).save("in.png")
    started: list[process.ProcessId] = []
    yield started
    for job in jobs.all_jobs():
        try:
            state = job.state()
        except jobs.JobError:
            continue
        started += [p for k in ("supervisor", "worker") if (p := process.ProcessId.from_dict(state.get(k)))]
    for proc in started:
        process.send(proc, signal.SIGKILL)


def wait_until(predicate, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def status(job_id: str) -> dict:
    return jobs.find(job_id).refresh()


def detach(capsys, *args: str) -> str:
    assert main([*args, "--detach"]) == 0
    out = capsys.readouterr().out
    return re.search(r"job (\w+) queued on cpu", out)[1]


def worker_of(job_id: str) -> process.ProcessId:
    return wait_until(lambda: process.ProcessId.from_dict(status(job_id).get("worker")), "the worker's pid")


def test_a_detached_run_returns_without_tensorflow_outlives_its_terminal_and_a_kill_9_resumes_to_the_same_bytes(
        state, capsys):
    assert main(["run", *RUN, "-p", "steps=150", "-o", "ref.png", "-q"]) == 0  # the uninterrupted run
    # the command returns having checked everything but imported no TensorFlow: in seconds, with the job's id
    code = ("import sys\nfrom gradfx.tui.cli import main\n"
            f"rc = main(['run', *{RUN!r}, '-p', 'steps=150', '-o', 'bg.png', '--detach'])\n"
            "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow')\nsys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no tensorflow" in done.stdout and "gradfx jobs follow" in done.stderr
    job_id = re.search(r"job (\w+) queued on cpu: run deepdream in.png -> bg.png", done.stdout)[1]
    assert status(job_id)["status"] in ("queued", "running")

    worker = worker_of(job_id)
    supervisor = process.ProcessId.from_dict(status(job_id)["supervisor"])
    for proc in (worker, supervisor):  # its own session, no controlling terminal: a closed terminal is nothing to it
        assert os.getsid(proc.pid) != os.getsid(0)
        assert Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[4] == "0"  # tty_nr
        os.kill(proc.pid, signal.SIGHUP)
    folder = jobs.find(job_id).folder
    wait_until(lambda: (folder / "checkpoint" / "state-0.npz").is_file(), "a checkpoint")
    assert process.alive(worker) and status(job_id)["status"] == "running"
    assert main(["jobs"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"{job_id}\s+running\s+\d+%\s+cpu .* run deepdream in.png -> bg.png", listed), listed

    os.kill(worker.pid, signal.SIGKILL)  # as the out-of-memory killer would
    failed = wait_until(lambda: (s := status(job_id))["status"] == "failed" and s, "the job to fail")
    assert "killed by SIGKILL" in failed["error"]
    assert main(["jobs"]) == 0
    assert "killed by SIGKILL" in capsys.readouterr().out
    assert not Path("bg.png").exists()

    assert main(["jobs", "resume", job_id[:4]]) == 0
    assert main(["jobs", "follow", job_id, "-q"]) == 0
    err = capsys.readouterr().err
    assert "wrote" not in err  # quiet
    assert status(job_id)["status"] == "done" and status(job_id)["outputs"] == [str(Path("bg.png").resolve())]
    assert Path("bg.png").read_bytes() == Path("ref.png").read_bytes()
    assert main(["jobs", "follow", job_id]) == 0  # a finished job: its closing lines at once
    assert "wrote" in capsys.readouterr().err
    modes = {p: oct(p.stat().st_mode & 0o777) for p in [folder, *folder.rglob("*")]
             if p.stat().st_mode & 0o077}
    assert modes == {}, "the job's state is private"


def test_a_chain_killed_in_its_second_step_resumes_to_the_bytes_of_an_uninterrupted_chain(state, capsys):
    Path("two.toml").write_text('input = "in.png"\nseed = 7\nweights = "random"\nmodel = "vgg16"\n\n'
                                '[[step]]\neffect = "deepdream"\nlayers = "block2_conv1:1"\noctaves = 1\nsteps = 20\n\n'
                                '[[step]]\neffect = "deepdream"\nlayers = "block3_conv1:1"\noctaves = 1\nsteps = 150\n')
    assert main(["chain", "two.toml", "-o", "ref.png", "--device", "cpu", "-q"]) == 0
    job_id = detach(capsys, "chain", "two.toml", "-o", "bg.png", "--device", "cpu", "--snapshots", "steps")
    Path("two.toml").write_text("edited meanwhile: the job runs the recipe as it was")
    folder = jobs.find(job_id).folder
    wait_until(lambda: (folder / "checkpoint" / "step02" / "state-0.npz").is_file(), "step 2's checkpoint")
    assert (folder / "checkpoint" / "step01" / "solution-0.npz").is_file()
    os.kill(worker_of(job_id).pid, signal.SIGKILL)
    wait_until(lambda: status(job_id)["status"] == "failed", "the job to fail")
    assert main(["jobs", "resume", job_id]) == 0
    wait_until(lambda: status(job_id)["status"] in jobs.FINISHED, "the job to end")
    assert status(job_id)["status"] == "done", status(job_id)
    assert Path("bg.png").read_bytes() == Path("ref.png").read_bytes()
    assert sorted(os.listdir("steps")) == ["step01-deepdream.png", "step02-deepdream.png"]


def test_jobs_queue_per_device_and_a_cancelled_one_keeps_its_image_so_far(state, capsys):
    first = detach(capsys, "run", *RUN, "-p", "steps=5000", "-o", "first.png")
    second = detach(capsys, "run", *RUN, "-p", "steps=3", "-o", "second.png")
    # an ETA from the second step on (the first builds and traces the model)
    wait_until(lambda: status(first)["status"] == "running" and (p := jobs.read_progress(jobs.find(first)))
               and p.eta is not None, "the first job's progress with an ETA")
    assert status(second)["status"] == "queued", "one job at a time on the CPU"
    assert main(["jobs", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[first]["status"] == "running" and 0 < rows[first]["progress"] < 1 and rows[first]["eta"] > 0
    assert rows[second]["status"] == "queued" and rows[second]["progress"] is None
    third = detach(capsys, "run", *RUN, "-p", "steps=3", "-o", "third.png")
    assert main(["jobs", "cancel", third]) == 0  # while queued: it never starts
    wait_until(lambda: status(third)["status"] == "cancelled", "the queued job to be cancelled")
    assert status(third)["error"] in ("cancelled while queued", "cancelled before its process could save anything")
    assert status(third).get("worker") is None

    assert main(["jobs", "cancel", first]) == 0
    assert "stops after its current step" in capsys.readouterr().out
    wait_until(lambda: status(first)["status"] == "cancelled", "the first job to be cancelled")
    assert Path("first.png").is_file(), "the image so far is written, as Ctrl-C writes it"
    assert jobs.find(first).report()["partial"] is True
    assert main(["jobs", "follow", first]) == 130
    assert "partial" in capsys.readouterr().err
    wait_until(lambda: status(second)["status"] == "done", "the second job")
    assert status(second)["started"] >= status(first)["finished"]
    assert main(["jobs", "--json"]) == 0  # done is all of it; a cancelled job shows how far it came
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[second]["progress"] == 1.0 and 0 < rows[first]["progress"] < 1
    with pytest.raises(jobs.JobError, match="already done"):
        jobs.cancel(jobs.find(second))

    assert main(["jobs", "clean"]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 job(s): {second}" in out and "kept 2 failed or cancelled" in out
    assert {j.id for j in jobs.all_jobs()} == {first, third}
    assert main(["jobs", "clean", "--all"]) == 0 and jobs.all_jobs() == []
    assert Path("first.png").is_file() and Path("second.png").is_file() and not Path("third.png").exists()


def test_a_deleted_state_folder_is_a_clear_error_and_the_run_still_writes_its_output(state, capsys):
    assert main(["run", *RUN, "-p", "steps=150", "-o", "ref.png", "-q"]) == 0
    job_id = detach(capsys, "run", *RUN, "-p", "steps=150", "-o", "bg.png")
    wait_until(lambda: jobs.read_progress(jobs.find(job_id)), "progress")
    state.append(worker_of(job_id))
    follower = subprocess.Popen([sys.executable, "-m", "gradfx.tui.cli", "jobs", "follow", job_id],
                                stderr=subprocess.PIPE, text=True)
    assert f"job {job_id} running" in follower.stderr.readline()  # it follows the job
    # deleted at once: rmtree alone races the job, which may write a file between its listing and rmdir
    gone = jobs.root().with_name("deleted-state")
    jobs.root().rename(gone)
    shutil.rmtree(gone, ignore_errors=True)
    _, err = follower.communicate(timeout=DEADLINE)
    assert follower.returncode == 2 and "was deleted" in err and "Traceback" not in err
    wait_until(lambda: not process.alive(state[-1]), "the worker to finish")
    assert Path("bg.png").read_bytes() == Path("ref.png").read_bytes()
    assert main(["jobs", "follow", job_id]) == 2
    assert "state folder" in capsys.readouterr().err


def test_a_detached_batch_runs_every_item_and_a_bad_command_makes_no_job(state, capsys, make_image):
    Path("photos").mkdir()
    for i in range(2):
        PILImage.fromarray((make_image(40, 48, "stripes", seed=i) * 255).astype(np.uint8)).save(f"photos/{i}.png")
    job_id = detach(capsys, "batch", "deepdream", "photos", "-o", "out", "--model", "vgg16", "--weights", "random",
                    "--device", "cpu", "-p", "layers=block2_conv1:1", "-p", "steps=3", "-p", "octaves=1")
    assert main(["jobs", "follow", job_id]) == 0
    assert "batch: 2 done, 0 failed" in capsys.readouterr().err
    records = [json.loads(line) for line in Path("out/manifest.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in records) == ["done", "done"]

    assert main(["run", "deepdream", "missing.png", "-o", "x.png", "--detach"]) == 2
    assert main(["batch", "deepdream", "nothing/", "-o", "out2", "--detach"]) == 2
    assert "does not exist" in capsys.readouterr().err and len(jobs.all_jobs()) == 1, "checked before a job"


def test_jobs_commands_say_what_is_wrong_in_one_line(state, capsys, monkeypatch):
    assert main(["jobs"]) == 0 and "no jobs" in capsys.readouterr().out
    for args, message in ((["jobs", "follow"], "takes one job id"), (["jobs", "cancel"], "takes job ids"),
                          (["jobs", "follow", "nope"], "no job 'nope'"), (["jobs", "list", "x"], "lists every job")):
        assert main(args) == 2
        assert message in capsys.readouterr().err
    monkeypatch.setenv(jobs.ENV, str(Path("in.png").resolve() / "jobs"))  # a file in the way
    assert main(["run", *RUN, "-p", "steps=2", "-o", "x.png", "--detach"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be created" in err and "GRADFX_JOBS_DIR" in err
