"""gradfx batch with temporal=flow: a folder of frames (or a video) is one ordered sequence, each frame run with
the frame before (its input and its output file) and the sequence's one seed; a rerun continues a sequence
from the outputs already written; on Ray each sequence is an ordered chain of tasks with the same outputs.
Built-in deepdream on VGG16's first block, random weights, 64 px frames of the generated moving scene."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradfx.engine import ParameterError, Previous, run
from gradfx.engine.batch import item_seed, run_batch
from gradfx.engine.images import samples
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import save_image

DREAM = {"layers": "block1_conv2", "octaves": 1, "steps": 2, "temporal": "flow"}
OPTS = {"params": DREAM, "model": "vgg16", "weights": "random", "seed": 4}


def write_frames(folder, n=4, size=64, **motion):
    folder.mkdir(parents=True, exist_ok=True)
    scene = samples.moving_scene(frames=n, size=size, **motion)
    return [save_image(folder / f"{i:04d}.png", f) for i, f in enumerate(scene.frames)]


def records(outdir):
    return [json.loads(x) for x in (outdir / "manifest.jsonl").read_text().splitlines()]


def test_a_folder_of_frames_runs_as_one_sequence_each_frame_following_the_last(tmp_path, registry):
    frames = write_frames(tmp_path / "in")
    summary = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", **OPTS)
    assert summary.ok and len(summary.done) == 4
    seeds = {r["seed"] for r in records(tmp_path / "out")}
    assert seeds == {item_seed(4, "0000.png")}  # one seed for the sequence: its first frame's
    out = sorted((tmp_path / "out").glob("*.png"))
    # frame 3 is exactly `run` with frame 2's input and output as the previous frame
    prev = Previous(load_image(frames[1]).rgb, load_image(out[1]).rgb)
    expected = run("deepdream", frames[2], model="vgg16", weights="random", seed=item_seed(4, "0000.png"),
                   previous=prev, params=DREAM)
    check = save_image(tmp_path / "expected.png", expected.image)
    assert np.array_equal(load_image(check).rgb, load_image(out[2]).rgb)
    alone = run("deepdream", frames[2], params=DREAM, model="vgg16", weights="random",
                seed=item_seed(4, "0000.png"))
    assert np.abs(alone.image - expected.image).mean() > 1 / 255  # the previous frame made a difference
    # the first frame follows nothing: it is the plain run
    first = run("deepdream", frames[0], params=DREAM, model="vgg16", weights="random",
                seed=item_seed(4, "0000.png"))
    assert np.array_equal(load_image(save_image(tmp_path / "first.png", first.image)).rgb,
                          load_image(out[0]).rgb)

    # a rerun after losing frame 3 redoes only it, following frame 2's output on disk: the same bytes
    before = out[2].read_bytes()
    out[2].unlink()
    again = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", **OPTS)
    assert again.done == ["0002.png"] and len(again.skipped) == 3
    assert out[2].read_bytes() == before


@pytest.mark.parametrize("kept", [1, 2])
def test_a_batch_stopped_mid_sequence_resumes_with_the_chain_intact(tmp_path, registry, kept):
    from gradfx.engine.progress import CancelToken

    opts = {**OPTS, "params": {**DREAM, "temporal_frames": kept}}
    # a disc fast enough that the background it uncovers was visible two frames before: long-term consistency
    # holds it to that frame
    frames = write_frames(tmp_path / "in", size=48, velocity=(-8.0, 0.0), pan=(1, 0))
    run_batch("deepdream", [tmp_path / "in"], tmp_path / "whole", **opts)
    if kept == 2:  # long-term consistency: the last frame followed the two frames before it, most recent first
        out = sorted((tmp_path / "whole").glob("*.png"))
        chain = Previous.chain([Previous(load_image(frames[t]).rgb, load_image(out[t]).rgb)
                                for t in (2, 1)])
        expected = run("deepdream", frames[3], params=opts["params"], model="vgg16", weights="random",
                       seed=item_seed(4, "0000.png"), previous=chain)
        check = save_image(tmp_path / "expected.png", expected.image)
        assert load_image(check).rgb.tobytes() == load_image(out[3]).rgb.tobytes()
        short = run("deepdream", frames[3], params=opts["params"], model="vgg16", weights="random",
                    seed=item_seed(4, "0000.png"), previous=chain.frames()[0])
        assert np.abs(short.image - expected.image).max() > 2 / 255  # the earlier frame made a difference
    stop = CancelToken()

    def after_two(ev):
        if ev.status == "done" and ev.done == 2:
            stop.cancel()

    part = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", progress=after_two, stop=stop, **opts)
    assert part.interrupted and len(part.done) < 4
    rest = run_batch("deepdream", [tmp_path / "in"], tmp_path / "out", **opts)
    assert sorted(part.done + rest.done) == [f"{i:04d}.png" for i in range(4)]
    # the frame after the last one done started from that frame's output on disk, warped: the same bytes as a
    # batch never stopped (a frame that followed nothing would differ, as the test above shows)
    for path in sorted((tmp_path / "whole").glob("*.png")):
        assert path.read_bytes() == (tmp_path / "out" / path.name).read_bytes()


def test_temporal_flow_in_a_recipe_batch_is_refused_before_any_compute(tmp_path, registry):
    write_frames(tmp_path / "in", n=2)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[step]]\neffect = "deepdream"\ntemporal = "flow"\n')
    with pytest.raises(ParameterError, match="-p temporal=flow"):
        run_batch(recipe, [tmp_path / "in"], tmp_path / "out")


@pytest.mark.slow
def test_on_ray_each_sequence_is_an_ordered_chain_with_the_local_outputs(tmp_path, registry):
    ray = pytest.importorskip("ray")
    for name in ("a", "b"):
        write_frames(tmp_path / "in" / name, n=3)
    local = run_batch("deepdream", [tmp_path / "in"], tmp_path / "local", **OPTS)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    try:
        remote = run_batch("deepdream", [tmp_path / "in"], tmp_path / "ray", ray=True, workers=2, **OPTS)
    finally:
        ray.shutdown()
    assert local.ok and remote.ok and len(remote.done) == 6
    for path in sorted((tmp_path / "local").rglob("*.png")):
        assert path.read_bytes() == (tmp_path / "ray" / path.relative_to(tmp_path / "local")).read_bytes()
    # each sequence's frames finished in order, on a seed of its own
    got = records(tmp_path / "ray")
    for seq in ("a", "b"):
        mine = [r for r in got if r["item"].startswith(f"{seq}/")]
        assert [r["item"] for r in mine] == [f"{seq}/{i:04d}.png" for i in range(3)]
        assert {r["seed"] for r in mine} == {item_seed(4, f"{seq}/0000.png")}
