"""gradfx batch on videos (PyAV) and on a local Ray cluster: a video comes back as a video with the same frame
count and rate; Ray's outputs are bit-identical to the local batch's and to `gradfx run`'s; a worker killed
mid-item is restarted and the batch completes. Built-in deepdream on VGG16's first block, random weights."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from helpers import make_video

from gradfx.engine.batch import item_seed, run_batch
from gradfx.engine.images import video
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import save_image
from gradfx.tui.cli import main

pytestmark = pytest.mark.slow

DREAM = {"layers": "block1_conv2", "octaves": 1, "steps": 2}
OPTS = {"params": DREAM, "model": "vgg16", "weights": "random", "seed": 4}


def write_images(folder, make_image, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_image(folder / f"{i}.png", make_image(40, 48, seed=i))


def test_a_video_comes_back_as_a_video_with_its_frame_count_rate_and_audio(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_video(tmp_path / "clip.mp4", frames=12, size=64, fps=Fraction(15))
    argv = ["batch", "deepdream", "clip.mp4", "-o", "out", "--model", "vgg16", "--weights", "random",
            "-p", "layers=block1_conv2", "-p", "octaves=1", "-p", "steps=1", "-p", "step_size=0.05", "-q"]
    assert main(argv) == 0
    frames = sorted((tmp_path / "out" / "clip").glob("*.png"))
    assert [f.name for f in frames] == [f"{i:06d}.png" for i in range(1, 13)]
    info = video.probe(tmp_path / "out" / "clip.mp4")
    assert (info.frames, info.fps, info.width, info.height, info.has_audio) == (12, Fraction(15), 64, 64, True)
    # the video holds the processed frames, in order
    back = list(video.read_frames(tmp_path / "out" / "clip.mp4"))
    source = list(video.read_frames(tmp_path / "clip.mp4"))
    for i in (0, 11):
        processed = load_image(frames[i]).rgb
        assert np.abs(back[i] - processed).mean() < np.abs(back[i] - source[i]).mean()
    records = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["item"] for r in records][-1] == "clip.mp4#video" and records[-1]["status"] == "done"
    assert records[2]["item"] == "clip.mp4#000003" and records[2]["seed"] == item_seed(0, "clip.mp4#000003")
    # a rerun has nothing to do: neither frames nor the video are redone
    before = (tmp_path / "out" / "clip.mp4").stat().st_mtime_ns
    assert main(argv[:-1]) == 0
    assert "0 done, 0 failed, 12 already done of 12" in capsys.readouterr().err
    assert (tmp_path / "out" / "clip.mp4").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_outputs_are_bit_identical_to_local_batch_and_gradfx_run(tmp_path, make_image, ray_cluster,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "in", make_image, 3)
    here, events = [], []
    local = run_batch("deepdream", ["in"], "local", progress=here.append, **OPTS)
    remote = run_batch("deepdream", ["in"], "ray", ray=True, workers=1, progress=events.append, **OPTS)
    assert local.ok and remote.ok and len(remote.done) == 3
    # each item's progress came back from the worker (throttled, its last event always), before its record
    for key in ("0.png", "1.png", "2.png"):
        steps = [e.step for e in events if e.item == key and e.status == "step"]
        last_here = [e.step for e in here if e.item == key and e.status == "step"][-1]
        assert steps and (steps[-1].total_step, steps[-1].loss) == (last_here.total_step, last_here.loss), key
        assert events.index(next(e for e in events if e.item == key and e.status == "done")) > max(
            i for i, e in enumerate(events) if e.item == key and e.status == "step")
    workers = {json.loads(x)["worker"] for x in (tmp_path / "ray" / "manifest.jsonl").read_text().splitlines()}
    assert len(workers) == 1 and next(iter(workers)).startswith("ray:")
    assert int(next(iter(workers))[4:]) != os.getpid()  # really another process
    for i in range(3):
        assert (tmp_path / "ray" / f"{i}.png").read_bytes() == (tmp_path / "local" / f"{i}.png").read_bytes()
    assert main(["run", "deepdream", "in/1.png", "-o", "run.png", "--model", "vgg16", "--weights", "random",
                 "--seed", str(item_seed(4, "1.png")), "-p", "layers=block1_conv2", "-p", "octaves=1",
                 "-p", "steps=2", "-q"]) == 0
    assert np.array_equal(load_image("run.png").rgb, load_image("ray/1.png").rgb)


def _kill_first_running_worker(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Ray worker process seen running an item (its title is 'ray::Worker.run')."""
    import psutil

    while not stop.is_set() and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any("ray::Worker.run" in part for part in proc.info["cmdline"] or ()):
                time.sleep(0.5)  # well inside the item
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(proc.info["pid"])
                return
        time.sleep(0.05)


def test_a_killed_worker_is_restarted_and_the_batch_completes(tmp_path, make_image, ray_cluster):
    write_images(tmp_path / "in", make_image, 3)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_running_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        summary = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", ray=True, workers=1,
                            **{**OPTS, "params": {**DREAM, "steps": 20}})
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running an item"
    assert summary.ok and sorted(summary.done) == ["0.png", "1.png", "2.png"]
    records = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["done"] * 3
    assert {r["worker"] for r in records} - {f"ray:{killed[0]}"}  # a restarted worker did the killed item


def test_abandoning_on_ray_records_nothing_and_a_rerun_completes(tmp_path, make_image, ray_cluster):
    import psutil

    from gradfx.engine.progress import CancelToken

    write_images(tmp_path / "in", make_image, 2)
    cancel = CancelToken()

    def abandon_once_running() -> None:  # the second Ctrl-C, while an item runs on the worker
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not cancel.cancelled:
            if any("ray::Worker.run" in " ".join(p.info["cmdline"] or ())
                   for p in psutil.process_iter(["cmdline"])):
                cancel.cancel()
            time.sleep(0.05)

    watcher = threading.Thread(target=abandon_once_running, daemon=True)
    watcher.start()
    opts = {**OPTS, "params": {**DREAM, "steps": 30}}
    summary = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", ray=True, workers=1, cancel=cancel,
                        **opts)
    watcher.join()
    assert summary.interrupted and not summary.done and not summary.failed and summary.pending == 2
    assert not (tmp_path / "out" / "manifest.jsonl").exists() and not list((tmp_path / "out").glob("*.png"))
    rerun = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", **opts)
    assert rerun.ok and sorted(rerun.done) == ["0.png", "1.png"]
