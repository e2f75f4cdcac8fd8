"""gradfx batch, locally: items and their seeds, outputs identical to `gradfx run`, the manifest (rerun skips
done items, retries failed ones), bad items recorded while the rest completes, models built once, several
workers, stopping and abandoning. Tiny VGG16 effect on seeded random weights or a weights file, 48 px images."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TinyPlugin, make_video

from gradfx.engine.batch import BatchEvent, discover, item_seed, run_batch
from gradfx.engine.errors import GradfxError, ImageError, OutputError, ParameterError
from gradfx.engine.images import video
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import save_image
from gradfx.engine.progress import CancelToken
from gradfx.tui.cli import main

PARAMS = {"steps": 2}


@pytest.fixture
def tiny(registry):
    registry.add_plugin(TinyPlugin(), "tiny")
    return registry


def write_images(folder: Path, make_image, names=("a.png", "sub/b.jpg", "sub/deeper/c.png")) -> list[Path]:
    out = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, make_image(48, 40 + 8 * i, seed=i))
        out.append(path)
    return out


def lines(outdir: Path) -> list[dict]:
    return [json.loads(x) for x in (outdir / "manifest.jsonl").read_text().splitlines()]


def test_item_seed_is_the_documented_digest():
    expected = int.from_bytes(hashlib.sha256(b"7:sub/b.jpg").digest()[:4], "big")
    assert item_seed(7, "sub/b.jpg") == expected
    assert item_seed(7, "sub/b.jpg") != item_seed(8, "sub/b.jpg") != item_seed(7, "b.jpg")
    assert 0 <= item_seed(2**32 - 1, "x") < 2**32


def test_discover_folders_globs_files_in_a_stable_order(tmp_path, make_image):
    write_images(tmp_path / "in", make_image)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"")
    extra = tmp_path / "one.png"
    save_image(extra, make_image(32, 32))
    items, videos = discover([tmp_path / "in", extra, str(tmp_path / "in" / "sub" / "*.jpg")], tmp_path / "out",
                             seed=3)
    assert [i.key for i in items] == ["a.png", "sub/b.jpg", "sub/deeper/c.png", "one.png", "b.jpg"]
    assert [Path(i.output).relative_to(tmp_path / "out").as_posix() for i in items] == [
        "a.png", "sub/b.png", "sub/deeper/c.png", "one.png", "b.png"]
    assert [i.seed for i in items] == [item_seed(3, i.key) for i in items] and not videos
    # a file named twice counts once; two files that would write the same output are refused
    assert len(discover([tmp_path / "in", tmp_path / "in" / "a.png"], tmp_path / "out")[0]) == 3
    save_image(tmp_path / "in" / "a.jpg", make_image(32, 32))
    with pytest.raises(OutputError, match="would both write .*a.png"):
        discover([tmp_path / "in"], tmp_path / "out")
    with pytest.raises(ImageError, match="does not exist"):
        discover([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(ImageError, match="matches no images"):
        discover([str(tmp_path / "*.gif")], tmp_path / "out")


def test_outputs_are_those_of_gradfx_run_with_the_item_seed(tmp_path, make_image, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "in", make_image)
    assert main(["batch", "tiny-dream", "in", "-o", "out", "-p", "steps=2", "--weights", "random", "--seed", "5",
                 "-q"]) == 0
    records = lines(tmp_path / "out")
    assert [r["status"] for r in records] == ["done"] * 3
    for r in records:
        assert r["seed"] == item_seed(5, r["item"]) and r["seconds"] > 0 and r["error"] is None
        assert main(["run", "tiny-dream", str(Path("in") / r["item"]), "-o", "single.png", "-p", "steps=2",
                     "--weights", "random", "--seed", str(r["seed"]), "-q", "--overwrite"]) == 0
        batch_out = load_image(r["output"]).rgb
        assert np.array_equal(batch_out, load_image("single.png").rgb), r["item"]
        assert not np.array_equal(batch_out, load_image(Path("in") / r["item"]).rgb)


def test_rerun_skips_done_items_and_retries_failed_ones(tmp_path, make_image, tiny, capsys):
    write_images(tmp_path / "in", make_image, names=("a.png", "b.png"))
    (tmp_path / "in" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    save_image(tmp_path / "in" / "small.png", make_image(12, 12))
    argv = ["batch", "tiny-dream", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", "steps=2",
            "--weights", "random"]
    assert main(argv) == 1  # some items failed: exit status 1, the rest completed
    err = capsys.readouterr().err
    assert "failed: corrupt.png: " in err and "failed: small.png: " in err and "2 done, 2 failed of 4" in err
    assert "run the same command again" in err
    first = {r["item"]: r for r in lines(tmp_path / "out")}
    assert {k: r["status"] for k, r in first.items()} == {"a.png": "done", "b.png": "done",
                                                          "corrupt.png": "failed", "small.png": "failed"}
    assert "corrupt.png: image data is truncated or corrupt" in first["corrupt.png"]["error"]
    assert "minimum" in first["small.png"]["error"] and "\n" not in first["small.png"]["error"]
    done_bytes = (tmp_path / "out" / "a.png").read_bytes()

    # fix one bad item; the rerun runs only the two failed ones, and the fixed one now succeeds
    save_image(tmp_path / "in" / "corrupt.png", make_image(48, 48, seed=9))
    assert main(argv) == 1
    second = lines(tmp_path / "out")[4:]
    assert sorted((r["item"], r["status"]) for r in second) == [("corrupt.png", "done"), ("small.png", "failed")]
    assert "1 done, 1 failed, 2 already done of 4" in capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").read_bytes() == done_bytes

    # other settings in the same folder are refused, before any compute
    with pytest.raises(OutputError, match="other settings"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params={"steps": 3}, weights="random")


def test_a_video_whose_frames_fail_is_no_item_and_the_fix_its_errors_name_is_accepted(tmp_path, tiny, capsys):
    """All 8 frames failing read "0 done, 9 failed, -1 not run of 8" (the video counted as an item), and the
    --size the errors advised was refused: "records a batch with other settings", with nothing done."""
    make_video(tmp_path / "clip.mp4", frames=2, size=24, audio=False)  # below VGG16's 32 px
    argv = ["batch", "tiny-dream", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out"), "-p", "steps=1",
            "--weights", "random"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "batch: 0 done, 2 failed of 2; 1 video(s) not written in" in err and "not run" not in err, err
    assert "failed: clip.mp4: video not written: frame(s) 1, 2 failed" in err
    assert err.count("use a larger size (e.g. --size 64)") == 2 and "run the command again with the fix" in err
    assert main([*argv, "--size", "33"]) == 0, capsys.readouterr().err  # the fix: accepted, nothing was done
    err = capsys.readouterr().err
    assert "batch: 2 done, 0 failed of 2 in" in err
    # 33 px frames make a 32 px video (even sides): said, not silent
    assert video.probe(tmp_path / "out" / "clip.mp4").width == 32
    assert "note: " in err and "clip.mp4 is 32x32: its frames are 33x33" in err and "row and column are cropped" in err
    # once items are done, other settings would mix with them: refused
    with pytest.raises(OutputError, match="items done with other settings"):
        run_batch("tiny-dream", [tmp_path / "clip.mp4"], tmp_path / "out", params={"steps": 2}, weights="random")


def test_each_model_is_built_once_for_the_batch(tmp_path, make_image, tiny, monkeypatch):
    from gradfx.engine.models import extractor

    weights = tmp_path / "vgg16.weights.h5"
    extractor.load_model("vgg16", "random", seed=1).model.save_weights(weights)
    extractor.clear_cache()
    built = []
    real = extractor.network
    monkeypatch.setattr(extractor, "network", lambda spec, **kw: built.append(spec.name) or real(spec, **kw))
    write_images(tmp_path / "in", make_image, names=[f"{i}.png" for i in range(4)])
    summary = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights=str(weights))
    assert len(summary.done) == 4 and summary.ok
    assert built == ["vgg16"]


def test_random_weights_are_seeded_per_item_and_not_kept(tmp_path, make_image, tiny):
    from gradfx.engine.models import extractor

    write_images(tmp_path / "in", make_image, names=("a.png", "b.png"))
    summary = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights="random")
    assert summary.ok
    assert not extractor._MODELS  # each item's network (seeded by its own seed) was dropped after it


def test_several_workers_share_the_items_and_give_the_same_outputs(tmp_path, make_image, tiny):
    write_images(tmp_path / "in", make_image, names=[f"{i}.png" for i in range(4)])
    one = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "one", params=PARAMS, weights="random")
    two = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "two", params=PARAMS, weights="random",
                    devices=["cpu", "cpu"])
    assert one.ok and two.ok and len(two.done) == 4
    assert {r["worker"] for r in lines(tmp_path / "two")} == {"0:cpu", "1:cpu"}
    for i in range(4):
        assert (tmp_path / "one" / f"{i}.png").read_bytes() == (tmp_path / "two" / f"{i}.png").read_bytes()


def test_one_local_worker_per_gpu(monkeypatch):
    import tensorflow as tf

    from gradfx.engine.batch import runner as batch

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["g0", "g1"] if kind == "GPU" else [])
    assert batch.local_devices() == ["gpu:0", "gpu:1"]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert batch.local_devices() == ["cpu"]


def test_stop_finishes_the_item_in_flight_and_a_rerun_completes(tmp_path, make_image, tiny):
    write_images(tmp_path / "in", make_image, names=[f"{i}.png" for i in range(3)])
    stop = CancelToken()
    events: list[BatchEvent] = []

    def progress(ev: BatchEvent) -> None:
        events.append(ev)
        if ev.status == "step":
            stop.cancel()  # "Ctrl-C" during the first item: it finishes, no other starts

    summary = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights="random",
                        progress=progress, stop=stop)
    assert summary.interrupted and summary.done == ["0.png"] and summary.pending == 2
    assert [r["item"] for r in lines(tmp_path / "out")] == ["0.png"]
    # one item finished: it built and traced the model, so it says nothing of the time per item yet
    assert events[0].status == "started" and events[-1].done == 1 and events[-1].eta is None
    rerun = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights="random")
    assert rerun.ok and rerun.skipped == ["0.png"] and rerun.done == ["1.png", "2.png"]


def test_the_batch_eta_counts_the_items_after_the_first():
    # the first item builds and traces the model (4 s where the others take 0.5 s): the ETA leaves it out
    first_only = BatchEvent(10, 1, 0, 0, 4.0, _finished=1, _first=4.0)
    assert first_only.eta is None
    later = BatchEvent(10, 2, 1, 0, 5.0, _finished=3, _first=4.0)
    assert later.eta == pytest.approx(0.5 * 7)  # 0.5 s an item since the first, 7 left


def test_cancel_abandons_the_item_in_flight_without_recording_it(tmp_path, make_image, tiny):
    write_images(tmp_path / "in", make_image, names=("a.png", "b.png"))
    cancel = CancelToken()
    summary = run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params={"steps": 5},
                        weights="random", cancel=cancel,
                        progress=lambda ev: ev.status == "step" and cancel.cancel())
    assert summary.interrupted and not summary.done and not summary.failed
    assert not (tmp_path / "out" / "a.png").exists()
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_errors_before_any_compute(tmp_path, make_image, tiny):
    write_images(tmp_path / "in", make_image, names=("a.png",))
    with pytest.raises(ParameterError, match="steps"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params={"steps": 0})
    (tmp_path / "out").mkdir()
    save_image(tmp_path / "out" / "a.png", make_image(8, 8))
    with pytest.raises(OutputError, match="not from this batch; pass --overwrite"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights="random")
    with pytest.raises(OutputError, match="over the input"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "in", params=PARAMS, weights="random",
                  overwrite=True)
    make_video(tmp_path / "clip.mp4", frames=2, audio=False)  # its output would be the video itself
    with pytest.raises(OutputError, match="clip.mp4: refusing to write over the input"):
        run_batch("tiny-dream", [tmp_path / "clip.mp4"], tmp_path, params=PARAMS, weights="random",
                  overwrite=True)
    with pytest.raises(ParameterError, match="--gpus-per-item chooses"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "o3", ray=True, devices=["cpu"])
    with pytest.raises(ParameterError, match="add --ray"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "o3", workers=2)
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, make_image, tiny, monkeypatch, capsys):
    write_images(tmp_path / "in", make_image, names=("a.png",))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(GradfxError, match=r"pip install 'gradfx\[ray\]'"):
        run_batch("tiny-dream", [tmp_path / "in"], tmp_path / "out", params=PARAMS, weights="random", ray=True)
    assert main(["batch", "tiny-dream", str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gradfx: error: --ray needs Ray; install it with: pip install 'gradfx[ray]'"]


def test_a_recipe_batch_gives_what_gradfx_chain_gives(tmp_path, make_image, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "in", make_image, names=("a.png",))
    (tmp_path / "r.toml").write_text('seed = 2\nweights = "random"\n\n[[step]]\neffect = "tiny-dream"\nsteps = 1\n\n'
                                     '[[step]]\neffect = "tiny-dream"\nsteps = 2\nchannel = 9\n')
    summary = run_batch("r.toml", ["in"], "out")
    assert summary.ok and summary.done == ["a.png"]
    assert lines(tmp_path / "out")[0]["seed"] == item_seed(2, "a.png")  # the recipe's seed is the batch seed
    assert main(["chain", "r.toml", "in/a.png", "-o", "chain.png", "--seed", str(item_seed(2, "a.png")),
                 "-q"]) == 0
    assert (tmp_path / "chain.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()
    with pytest.raises(ParameterError, match="recipe's go in its"):
        run_batch("r.toml", ["in"], "out2", params={"steps": 3})


def test_ray_workers_are_sized_by_the_clusters_resources():
    from gradfx.engine.batch.ray_runner import size_workers

    assert size_workers({"CPU": 16, "GPU": 4}, None, None, 100) == (4, 1.0)  # a GPU per item where there are GPUs
    assert size_workers({"CPU": 16, "GPU": 4}, 0.5, None, 100) == (8, 0.5)
    assert size_workers({"CPU": 16, "GPU": 4}, 0, 3, 100) == (3, 0.0)  # CPUs only, capped by --workers
    assert size_workers({"CPU": 2}, None, None, 100) == (2, 0.0)  # no GPUs: a CPU per worker
    assert size_workers({"CPU": 8}, None, None, 3) == (3, 0.0)  # never more workers than items
    with pytest.raises(GradfxError, match="--gpus-per-item 1 but the cluster has 0 GPU"):
        size_workers({"CPU": 8}, 1, None, 3)
    with pytest.raises(GradfxError, match="--workers 0"):
        size_workers({"CPU": 8}, None, 0, 3)


def test_an_effect_that_makes_its_image_from_nothing_is_refused_alone_and_first_in_a_recipe(tiny, tmp_path,
                                                                                          make_image):
    write_images(tmp_path / "in", make_image, names=("a.png",))
    with pytest.raises(ParameterError, match=r"^effect 'feature-vis' makes an image from nothing; a batch needs an "
                                             r"effect that takes an input image$"):
        run_batch("feature-vis", [tmp_path / "in"], tmp_path / "out")
    recipe = tmp_path / "r.toml"  # its items all gave the same image, each input ignored
    recipe.write_text("[[step]]\neffect = 'feature-vis'\n[[step]]\neffect = 'tiny-dream'\n")
    with pytest.raises(ParameterError, match=r"takes an input image \(.*r\.toml starts with it\)$"):
        run_batch(str(recipe), [tmp_path / "in"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("trained", [True, False], ids=["trained-vgg16", "random"])
def test_default_model_and_weights_give_what_gradfx_run_gives(tmp_path, make_image, registry, capsys,
                                                              monkeypatch, request, trained):
    """Offline with `auto` weights and no --model, a batch item is what `gradfx run` writes with its seed: the
    default model follows the weights to the trained VGG16 (or, without it, falls back to random weights), and
    the batch says so once, before any item runs. (It ran InceptionV3 on random weights, silently.)"""
    if not trained:
        request.getfixturevalue("no_trained_vgg16")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file here
    write_images(tmp_path / "in", make_image, names=("a.png",))
    quick = ["-p", "steps=1", "-p", "octaves=1", "-q"]
    assert main(["batch", "deepdream", "in", "-o", "out", "--size", "96", *quick]) == 0
    said = capsys.readouterr().err
    (record,) = lines(tmp_path / "out")
    assert main(["run", "deepdream", "in/a.png", "-o", "single.png", "--size", "96", "--seed", str(record["seed"]),
                 "--report", "single.json", *quick]) == 0
    report = json.loads(Path("single.json").read_text())
    assert np.array_equal(load_image(record["output"]).rgb, load_image("single.png").rgb)
    if trained:
        assert report["model"] == "vgg16" and report["weights"]["resolved"] == "hed"
        assert said.count("runs on vgg16 with the HED-fine-tuned weights") == 1
    else:
        assert report["model"] == "inception_v3" and report["weights"]["resolved"] == "random"
        assert said.count("random") >= 1 and "warning" in said
