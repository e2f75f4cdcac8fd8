"""Background jobs' parts (gradfx.engine.jobs): the private state folder, job records, process identity,
per-device locks and turns, the progress file, and the worker's faults (a full disk, a state folder deleted,
an output that could not be written) run in this process. The detached processes themselves are tested
through the command line in tests/tui/test_jobs_cli.py."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TinyPlugin
from PIL import Image as PILImage

from gradfx.engine import jobs
from gradfx.engine.errors import GradfxError, JobError
from gradfx.engine.images import atomic
from gradfx.engine.jobs import process, progressfile, queue, store, worker
from gradfx.engine.progress import CancelToken, ProgressEvent


@pytest.fixture
def jobs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "state" / "jobs"
    monkeypatch.setenv(store.ENV, str(folder))
    return folder


def _job(kind="run", spec=None, status="queued", devices=("cpu",), **state) -> jobs.Job:
    request = {"kind": kind, "what": f"{kind} test", "spec": spec or {}, "devices": list(devices),
               "cwd": os.getcwd(), "plugins": [], "created": time.time()}
    return store.create(request, {"status": status, "queued_at": time.time(), **state})


def _private(path: Path) -> list[str]:
    """Every file or folder under ``path`` (itself included) that others may read or enter."""
    loose = []
    for p in [path, *path.rglob("*")]:
        if stat.S_IMODE(p.stat().st_mode) & 0o077:
            loose.append(f"{p.relative_to(path)}: {oct(stat.S_IMODE(p.stat().st_mode))}")
    return loose


def test_the_state_folder_is_the_environments_then_xdgs_then_the_home_ones(monkeypatch, tmp_path):
    monkeypatch.delenv(store.ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert store.root() == tmp_path / "home" / ".local" / "state" / "gradfx" / "jobs"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec ignores a relative path
    assert store.root() == tmp_path / "home" / ".local" / "state" / "gradfx" / "jobs"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert store.root() == tmp_path / "xdg" / "gradfx" / "jobs"
    monkeypatch.setenv(store.ENV, str(tmp_path / "mine"))
    assert store.root() == tmp_path / "mine"


def test_the_state_folder_and_every_job_file_are_private(jobs_dir):
    jobs_dir.mkdir(parents=True, mode=0o755)
    jobs_dir.chmod(0o755)  # made loose by someone: tightened
    job = _job()
    job.update(status="running")
    job.write(store.REPORT, "{}")
    assert stat.S_IMODE(jobs_dir.stat().st_mode) == 0o700
    assert set(os.listdir(job.folder)) >= {"job.json", "status.json", "report.json", "lock"}
    assert _private(job.folder) == []
    assert not [p for p in jobs_dir.iterdir() if p.name.startswith(".")], "no half-made job left behind"


def test_a_state_folder_that_cannot_be_made_is_a_one_line_error_naming_the_fix(jobs_dir, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(JobError, match=r"cannot be created \(.*No space left on device\); free disk space, or set "
                                       r"GRADFX_JOBS_DIR"):
        _job()


def test_a_job_is_found_by_its_id_or_a_unique_prefix(jobs_dir):
    a, b = _job(), _job()
    assert jobs.find(a.id).folder == a.folder and jobs.find(a.id.upper()).id == a.id
    common = os.path.commonprefix([a.id, b.id])
    assert jobs.find(a.id[: len(common) + 1]).id == a.id
    with pytest.raises(JobError, match="no job 'zzzz'"):
        jobs.find("zzzz")
    if common:
        with pytest.raises(JobError, match="ambiguous"):
            jobs.find(common)
    with pytest.raises(JobError, match="no job ''"):
        jobs.find("")


def test_a_pid_the_system_gave_to_another_process_is_not_the_jobs():
    me = process.identify()
    assert process.alive(me) and me.start is not None
    assert not process.alive(process.ProcessId(me.pid, me.start + "0"))  # another start: another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process.alive(process.identify(child.pid))


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = process.identify(child.pid)
    deadline = time.monotonic() + 60
    while process._state_and_start(child.pid)[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive(ident)  # ended, not yet reaped by its parent (this test)
    child.wait()


def test_a_job_whose_processes_are_gone_is_failed_with_the_reason_and_the_logs_last_line(jobs_dir):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = process.identify(child.pid).to_dict()
    job = _job(status="running", supervisor=gone, worker=gone)
    (job.folder / store.LOG).write_text("loading\nMemoryError: out of memory\n\n")
    state = job.refresh()
    assert state["status"] == "failed"
    assert "is gone without finishing" in state["error"] and "MemoryError: out of memory" in state["error"]
    assert job.state()["status"] == "failed", "recorded, not only shown"
    alive = _job(status="running", worker=process.identify().to_dict())
    assert alive.refresh()["status"] == "running"
    asked = _job(status="queued", supervisor=gone, cancel_requested=True)  # SIGTERM before its handler was set
    assert asked.refresh()["status"] == "cancelled"


def test_the_devices_a_job_queues_on(monkeypatch):
    monkeypatch.setattr(queue, "visible_gpus", lambda: 0)
    assert queue.device_keys(None) == ["cpu"] and queue.device_keys("cpu") == ["cpu"]
    assert queue.device_keys("gpu:1") == ["gpu1"] and queue.device_keys("gpu") == ["gpu0"]
    monkeypatch.setattr(queue, "visible_gpus", lambda: 3)
    assert queue.device_keys(None) == ["gpu0"] and queue.device_keys("auto") == ["gpu0"]
    assert queue.device_keys(None, every_gpu=True) == ["gpu0", "gpu1", "gpu2"]  # a batch: a worker per GPU
    assert queue.device_keys("cpu", every_gpu=True) == ["cpu"]
    with pytest.raises(GradfxError, match="unknown device"):
        queue.device_keys("tpu")


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, tmp_path):
    for i in range(2):
        (tmp_path / f"0000:0{i}:00.0").mkdir()
    monkeypatch.setattr(queue, "_NVIDIA", tmp_path)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert queue.visible_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert queue.visible_gpus() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert queue.visible_gpus() == 0
    monkeypatch.setattr(queue, "_NVIDIA", tmp_path / "none")
    assert queue.visible_gpus() == 0


def test_a_device_lock_is_held_once_and_a_killed_holder_leaves_none_behind(jobs_dir):
    store.ensure_root()
    fds = queue._try_lock(["cpu"])
    assert fds is not None and queue._try_lock(["cpu"]) is None and queue._try_lock(["gpu0", "cpu"]) is None
    for fd in fds:
        os.close(fd)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(jobs_dir / 'locks' / 'cpu.lock')!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert queue._try_lock(["cpu"]) is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    fds = queue._try_lock(["cpu"])
    assert fds is not None, "the kernel let go of the killed process's lock"
    for fd in fds:
        os.close(fd)


def test_turns_go_in_the_order_jobs_were_queued_on_a_shared_device(jobs_dir):
    me = process.identify().to_dict()  # a live "supervisor" for each waiting job
    first = _job(supervisor=me, devices=["cpu"])
    second = _job(supervisor=me, devices=["cpu"])
    other = _job(supervisor=me, devices=["gpu0"])
    at = lambda j: j.state()["queued_at"]
    assert queue._waiting_before(second, ["cpu"], at(second)).id == first.id
    assert queue._waiting_before(first, ["cpu"], at(first)) is None
    assert queue._waiting_before(other, ["gpu0"], at(other)) is None, "another device: no wait"
    first.update(supervisor=None)  # its supervisor died: it no longer holds the queue up
    assert queue._waiting_before(second, ["cpu"], at(second)) is None
    first.update(status="running", supervisor=me)
    assert queue.holder(["cpu"], second).id == first.id


def test_a_progress_event_round_trips_through_json_and_knows_its_chain_step():
    ev = ProgressEvent("step 2/4 deepdream · octave 1/2 (48x56)", 0, 2, 3, 10, 1.5, 2.0, total_step=5,
                       total_steps=20, _preview=lambda: np.zeros((2, 2, 3)))
    back = ProgressEvent.from_dict(json.loads(json.dumps({**ev.to_dict(), "from_a_newer_gradfx": 1})))
    assert back == ProgressEvent(**{**ev.to_dict()}) and back.preview() is None
    assert ev.chain_step == (2, 4) and ev.run_fraction == pytest.approx((1 + 0.25) / 4)
    plain = ProgressEvent("octave 1/2 (48x56)", 0, 2, 3, 10, 1.5, 2.0, total_step=5, total_steps=20)
    assert plain.chain_step is None and plain.run_fraction == 0.25


def test_the_progress_writer_keeps_the_latest_event_and_preview_and_survives_a_deleted_folder(jobs_dir, capsys):
    job = _job(status="running")
    writer = progressfile.ProgressWriter(job, interval=0.0, preview_interval=0.0)
    image = np.random.default_rng(0).random((400, 200, 3)).astype(np.float32)
    for step in (1, 2):
        writer(ProgressEvent("octave 1/1 (400x200)", 0, 1, step, 4, 0.5 * step, 1.0, step, 4,
                             _preview=lambda: image))
    progress = progressfile.read(job)
    assert progress.event.step == 2 and progress.event.loss == 1.0 and progress.fraction == 0.5
    preview = jobs.read_preview(job)
    assert preview.shape == (320, 160, 3) and preview.dtype == np.uint8  # shrunk to 320 px
    assert _private(job.folder) == []
    job.remove()
    writer(ProgressEvent("octave 1/1 (400x200)", 0, 1, 3, 4, 1.5, 1.0, 3, 4))  # no exception: the run goes on
    writer(ProgressEvent("octave 1/1 (400x200)", 0, 1, 4, 4, 2.0, 1.0, 4, 4))
    err = capsys.readouterr().err
    assert err.count("progress not recorded") == 1 and "was deleted" in err


def test_clean_cancel_and_resume_refuse_what_they_cannot_do(jobs_dir):
    done, failed, cancelled = _job(status="done"), _job(status="failed"), _job(status="cancelled")
    running = _job(status="running", worker=process.identify().to_dict())
    with pytest.raises(JobError, match="already done"):
        jobs.cancel(done)
    with pytest.raises(JobError, match="is done; nothing to resume"):
        jobs.resume(done)
    with pytest.raises(JobError, match="still running"):
        jobs.resume(running)
    with pytest.raises(JobError, match="still running.*cancel it first"):
        jobs.clean([running])
    assert [j.id for j in jobs.clean()] == [done.id], "failed and cancelled ones stay resumable"
    assert {j.id for j in jobs.clean(everything=True)} == {failed.id, cancelled.id}
    assert [j.id for j in jobs.all_jobs()] == [running.id]


# --- the worker, in this process ---------------------------------------------------------------------------
@pytest.fixture
def tiny(registry, tmp_path, make_image, monkeypatch):
    registry.add_plugin(TinyPlugin(), "tiny")
    monkeypatch.chdir(tmp_path)
    PILImage.fromarray((make_image(40, 48) * 255).astype(np.uint8)).save("in.png")
    return {"effect": "tiny-dream", "input": "in.png", "params": {"steps": "6", "optimizer": "adam"},
            "model": None, "weights": "random", "seed": 3, "device": "cpu", "size": None,
            "output": str(tmp_path / "out.png"), "report": None, "protect": [str(tmp_path / "in.png")],
            "checkpoint": None, "checkpoint_every": 2}


def _work(job, resume=False, cancel=None):
    outcome = worker.work(job, job.request, cancel or CancelToken(), resume)
    worker.record(job, outcome)
    return outcome


def test_the_worker_runs_a_job_and_records_how_it_ended(jobs_dir, tiny, tmp_path):
    from gradfx.engine.running.api import run

    job = _job(spec=tiny)
    outcome = _work(job)
    assert outcome.status == "done" and job.state()["outputs"] == [tiny["output"]]
    run("tiny-dream", "in.png", params={"steps": 6, "optimizer": "adam"}, weights="random", seed=3).save(tmp_path / "ref.png")
    assert Path(tiny["output"]).read_bytes() == (tmp_path / "ref.png").read_bytes()
    assert job.report()["steps"] == 6 and progressfile.read(job).event.total_step == 6
    assert _private(job.folder) == [], "the checkpoint inside is private too"


def test_a_full_disk_under_the_state_folder_never_stops_the_run(jobs_dir, tiny, capsys, monkeypatch):
    job = _job(spec=tiny)
    real = atomic.atomic_write

    def full(path, write_fn, **kwargs):  # the state folder's disk fills during the run; the output's does not
        if Path(path).is_relative_to(job.folder) and (job.folder / "checkpoint" / "state-0.npz").exists():
            return real(path, lambda tmp: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")),
                        **kwargs)
        return real(path, write_fn, **kwargs)

    monkeypatch.setattr(atomic, "atomic_write", full)
    outcome = _work(job)
    assert outcome.status == "done" and Path(tiny["output"]).is_file()
    assert any("checkpoint not written" in w and "No space left" in w for w in outcome.report["warnings"])
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free disk space" in err  # said in the log
    assert "Traceback" not in err


def test_an_output_the_full_disk_refused_is_written_by_a_resume_without_computing_again(jobs_dir, tiny,
                                                                                      monkeypatch):
    from gradfx.engine.running import result

    job = _job(spec=tiny)
    real = result.save_image

    def refuse(path, *args, **kwargs):
        if str(path) == tiny["output"]:
            raise GradfxError(f"{path}: cannot write (No space left on device); free disk space")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(result, "save_image", refuse)  # what Result.save calls
    outcome = _work(job)
    assert outcome.status == "failed" and "No space left on device" in job.state()["error"]
    assert not Path(tiny["output"]).exists()
    monkeypatch.setattr(result, "save_image", real)
    steps = []
    monkeypatch.setattr(progressfile.ProgressWriter, "__call__", lambda self, ev: steps.append(ev))
    assert _work(job, resume=True).status == "done" and Path(tiny["output"]).is_file()
    assert steps == [], "the finished solution came from the checkpoint"


def test_a_cancelled_job_keeps_the_image_so_far_and_a_resume_finishes_it(jobs_dir, tiny, monkeypatch):
    job = _job(spec=tiny)
    cancel = CancelToken()
    real = progressfile.ProgressWriter.__call__

    def stop_at_4(self, ev):
        real(self, ev)
        if ev.total_step == 4:
            cancel.cancel()

    monkeypatch.setattr(progressfile.ProgressWriter, "__call__", stop_at_4)
    outcome = _work(job, cancel=cancel)
    monkeypatch.setattr(progressfile.ProgressWriter, "__call__", real)
    assert outcome.status == "cancelled" and outcome.report["partial"] and Path(tiny["output"]).is_file()
    partial = Path(tiny["output"]).read_bytes()
    assert _work(job, resume=True).status == "done" and job.report()["steps"] == 6
    assert Path(tiny["output"]).read_bytes() != partial


def test_a_done_job_shows_all_of_it_and_others_how_far_they_came():
    """A dream that stopped at max_loss at 32% was listed 'done 32%'."""
    from gradfx.engine.jobs.progressfile import Progress

    event = ProgressEvent(stage="octave", stage_index=1, stage_count=1, step=3, steps=10, loss=1.0, elapsed=1.0,
                          total_step=3, total_steps=10)
    part = Progress(event=event, batch=None, written=0.0)
    assert jobs.shown_fraction("done", part) == 1.0 and jobs.shown_fraction("done", None) == 1.0
    assert jobs.shown_fraction("cancelled", part) == pytest.approx(part.fraction) and 0 < part.fraction < 1
    assert jobs.shown_fraction("queued", None) is None
