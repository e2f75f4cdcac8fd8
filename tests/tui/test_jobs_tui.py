"""The TUI's runs as background jobs, driven with Textual's Pilot: ctrl+r makes a job that writes its output
(a real detached worker), a new app reattaches to a TUI's running job and two apps follow one job, escape
cancels it, and the jobs panel (f6) lists, previews, opens and removes jobs. The real TUI losing its terminal
in tmux is tests/tui/test_tmux.py's."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("textual")

from gradfx.engine import jobs  # noqa: E402
from gradfx.engine.images.save import save_image  # noqa: E402
from gradfx.engine.jobs import process, progressfile, store  # noqa: E402
from gradfx.engine.progress import ProgressEvent  # noqa: E402
from gradfx.engine.running.result import report_json  # noqa: E402
from gradfx.tui.app import GradfxApp  # noqa: E402
from gradfx.tui.jobs_screen import JobsScreen  # noqa: E402
from gradfx.tui.widgets import RunPanel  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZE = (120, 32)


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.ENV, str(tmp_path / "state"))
    monkeypatch.setenv("PYTHONPATH", str(HERE) + (f":{sys_path}" if (sys_path := _pythonpath()) else ""))
    monkeypatch.setenv("GRADFX_PLUGINS", "none")
    sleepers: list[subprocess.Popen] = []
    yield sleepers
    for job in jobs.all_jobs():
        for key in ("supervisor", "worker"):
            process.send(process.ProcessId.from_dict(job.state().get(key)), 9)
    for proc in sleepers:
        proc.kill()
        proc.wait()


def _pythonpath() -> str:
    import os

    return os.environ.get("PYTHONPATH", "")


def _jobs_app(recording_app, sample, **kw):
    app = recording_app(image=sample, weights="random", device="cpu", **kw)
    app.use_jobs, app.plugin_modules = True, ("tiny_plugin",)
    return app


def _sleeper(sleepers, term: Path | None = None) -> dict:
    """A live process standing in for a job's process: its identity as a job records it. With ``term``, it
    makes that file when it gets SIGTERM (and goes on, as a supervisor passing it on to its worker)."""
    code = "import time; time.sleep(600)" if term is None else (
        f"import pathlib, signal, time\nsignal.signal(signal.SIGTERM, lambda *a: pathlib.Path({str(term)!r}).touch())"
        "\nprint('ready', flush=True)\ntime.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE if term else None, text=True)
    if term is not None:
        assert proc.stdout.readline().strip() == "ready"
    sleepers.append(proc)
    return process.identify(proc.pid).to_dict()


def _fake_job(status: str = "running", source: str = "tui", **state) -> jobs.Job:
    request = {"kind": "chain", "what": "tui: tiny-dream on sample.png -> sample-tiny-dream.png", "spec": {},
               "devices": ["cpu"], "cwd": ".", "plugins": [], "source": source, "created": time.time()}
    return store.create(request, {"status": status, "queued_at": time.time(), **state})


def _event(step: int) -> ProgressEvent:
    return ProgressEvent("tiny-dream 1/1 (48x40)", 0, 1, step, 100, float(step), 0.5 * step, step, 100,
                         _preview=lambda: np.full((40, 48, 3), step / 100, np.float32))


async def test_ctrl_r_runs_the_chain_as_a_job_that_writes_its_output(tiny_registry, sample, recording_app,
                                                                        wait_for, state, tmp_path):
    from gradfx.engine.running.api import run

    app = _jobs_app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded is not None)
        app.add_step("tiny-dream")
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.of(GradfxApp.JobFinished) or app.of(GradfxApp.RunFailed), timeout=240)
        assert not app.of(GradfxApp.RunFailed), app.of(GradfxApp.RunFailed)[0].error
        (attached,) = app.of(GradfxApp.JobAttached)
        job = jobs.find(attached.job_id)
        assert job.request["source"] == "tui" and job.request["plugins"] == ["tiny_plugin"]
        assert app.of(GradfxApp.RunProgress)[-1].event.step == 2
        finished = app.of(GradfxApp.JobFinished)[0]
        assert finished.status == "done" and finished.outputs == [str(tmp_path / "sample-tiny-dream.png")]
        assert "wrote sample-tiny-dream.png" in str(app.query_one(RunPanel).query_one("#status").render())
        assert not app.running and app.result is not None
        await pilot.press("ctrl+s")  # a copy, under the next free name
        await pilot.pause()
        assert app.screen.query_one("Input").value == "sample-tiny-dream-2.png"
    run("tiny-dream", "sample.png", weights="random", device="cpu").save(tmp_path / "ref.png")
    assert (tmp_path / "sample-tiny-dream.png").read_bytes() == (tmp_path / "ref.png").read_bytes()


async def test_a_new_app_reattaches_to_a_tui_job_and_two_apps_follow_it_to_its_end(tiny_registry, sample,
                                                                                     recording_app, wait_for,
                                                                                     state, tmp_path):
    job = _fake_job(worker=_sleeper(state))
    _fake_job(source="cli", worker=_sleeper(state))  # not the TUI's: left alone
    writer = progressfile.ProgressWriter(job, interval=0.0, preview_interval=0.0)
    writer(_event(10))
    first, second = _jobs_app(recording_app, sample), _jobs_app(recording_app, sample)
    async with first.run_test(size=SIZE) as p1, second.run_test(size=SIZE) as p2:
        for app, pilot in ((first, p1), (second, p2)):
            await wait_for(pilot, lambda app=app: app.of(GradfxApp.RunProgress) and app.of(GradfxApp.PreviewReady))
            assert [m.job_id for m in app.of(GradfxApp.JobAttached)] == [job.id]
            assert app.running and app.of(GradfxApp.RunProgress)[-1].event.step == 10
            assert app.of(GradfxApp.RunProgress)[-1].losses == [10.0]
        writer(_event(11))
        for app, pilot in ((first, p1), (second, p2)):  # live: both see the next step
            await wait_for(pilot, lambda app=app: app.of(GradfxApp.RunProgress)[-1].event.step == 11)
        out = tmp_path / "sample-tiny-dream.png"
        save_image(out, np.full((40, 48, 3), 0.25, np.float32))
        job.write(store.REPORT, report_json({"seconds": 2.5, "partial": False, "status": "done"}))
        job.update(status="done", outputs=[str(out)], finished=time.time())
        for app, pilot in ((first, p1), (second, p2)):
            await wait_for(pilot, lambda app=app: app.of(GradfxApp.JobFinished))
            assert not app.running and app.result.image.shape == (40, 48, 3)
            assert "done in 2.5s — job" in str(app.query_one(RunPanel).query_one("#status").render())


async def test_escape_cancels_the_followed_job(tiny_registry, sample, recording_app, wait_for, state, tmp_path):
    job = _fake_job(supervisor=_sleeper(state, term=tmp_path / "TERM"))
    app = _jobs_app(recording_app, sample)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.of(GradfxApp.JobAttached))
        await pilot.press("escape")
        await wait_for(pilot, lambda: (tmp_path / "TERM").exists())  # SIGTERM: stop after the current step
        assert job.state()["cancel_requested"] is True
        assert "cancelling job" in str(app.query_one(RunPanel).query_one("#status").render())


async def test_the_jobs_panel_lists_previews_opens_and_removes_jobs(tiny_registry, sample, recording_app, wait_for,
                                                                     state, tmp_path):
    out = tmp_path / "done.png"
    save_image(out, np.full((30, 20, 3), 0.5, np.float32))
    done = _fake_job(status="done", outputs=[str(out)])
    failed = _fake_job(status="failed", error="its process (pid 1) was killed by SIGKILL")
    running = _fake_job(source="cli", worker=_sleeper(state))
    progressfile.ProgressWriter(running, interval=0.0, preview_interval=0.0)(_event(40))
    app = recording_app(image=sample, weights="random", device="cpu")  # runs inside the app; f6 all the same
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        screen = app.screen
        lines = [str(screen.query_one("#job-list").get_option_at_index(i).prompt) for i in range(3)]
        assert lines[0].startswith(f"{running.id}  running") and "40%" in lines[0]
        assert lines[1].startswith(f"{failed.id}  failed") and "killed by SIGKILL" in lines[1]
        assert lines[2].startswith(f"{done.id}  done")
        assert screen.query_one("#job-preview").image.shape[:2] == (40, 48)  # the running job's live image
        await pilot.press("down", "down")
        assert screen.query_one("#job-preview").image.shape[:2] == (30, 20)  # the finished job's output
        await pilot.press("c")  # nothing to cancel
        await pilot.pause()
        assert any("already done" in n.message for n in app._notifications)
        await pilot.press("up", "x")  # remove the failed one
        await wait_for(pilot, lambda: not failed.folder.exists())
        await pilot.press("down", "enter")  # open the done job's output
        await wait_for(pilot, lambda: not isinstance(app.screen, JobsScreen))
        assert app.result is not None and app.result.image.shape == (30, 20, 3)
        assert out.exists()
