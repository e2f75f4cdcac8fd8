"""The headless API and the command line, end to end on a tiny effect with seeded random weights."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import TinyDream, TinyPlugin
from PIL import Image as PILImage

from gradfx.engine import run, run_chain
from gradfx.engine.errors import (
    ImageError,
    OutputError,
    ParameterError,
    PluginError,
    UnknownEffectError,
    UnknownModelError,
)
from gradfx.engine.running.api import Result
from gradfx.tui.cli import main


class Broken(TinyDream):
    name = "broken-fx"
    summary = "raises inside build"

    def build(self, ctx, params):
        raise ZeroDivisionError("plugin bug")


@pytest.fixture
def reg(registry):
    registry.add_plugin(TinyPlugin(TinyDream(), Broken()), "tiny")
    return registry


@pytest.fixture
def photo(tmp_path, make_image):
    path = tmp_path / "photo.png"
    PILImage.fromarray((make_image(40, 48) * 255).astype(np.uint8)).save(path)
    return path


def test_run_returns_image_and_complete_report(reg, photo):
    res = run("tiny-dream", photo, params={"steps": 4}, weights="random", seed=2)
    r = res.report
    assert res.image.shape == (40, 48, 3)
    for key in ("effect", "model", "weights", "params", "seed", "device", "seconds", "steps", "step_seconds",
                "losses"):
        assert key in r, key
    assert r["effect"] == "tiny-dream" and r["model"] == "vgg16" and r["plugin"] == "tiny"
    assert r["weights"] == {"requested": "random", "resolved": "random", "path": None,
                            "description": "random (seeded He-normal, untrained: no learned features)",
                            "fell_back_to_random": False}
    assert r["params"] == {"steps": 4, "layer": "block1_conv2", "channel": 5, "octaves": 1, "optimizer": "sgd"}
    assert r["steps"] == 4 and len(r["step_seconds"]) == 4
    assert r["losses"][-1] > r["losses"][0]


def test_auto_weights_fall_back_to_random_and_say_so(reg, photo, tmp_path, monkeypatch, no_trained_vgg16):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    # the same cached extractor: its record has no fallback
    run("tiny-dream", photo, params={"steps": 1}, weights="random")
    r = run("tiny-dream", photo, params={"steps": 1}).report
    assert r["weights"]["requested"] == "auto" and r["weights"]["resolved"] == "random"
    assert r["weights"]["fell_back_to_random"] is True
    assert any("random" in w for w in r["warnings"])


def test_same_seed_same_bytes(reg, photo):
    a = run("tiny-dream", photo, weights="random", seed=1).image
    b = run("tiny-dream", photo, weights="random", seed=1).image
    assert a.tobytes() == b.tobytes()


def test_user_errors(reg, photo, tmp_path):
    with pytest.raises(UnknownEffectError, match="did you mean 'tiny-dream'"):
        run("tiny-dreem", photo)
    with pytest.raises(ParameterError, match="'steps'"):
        run("tiny-dream", photo, params={"steps": 0})
    with pytest.raises(ParameterError, match="needs an input image"):
        run("tiny-dream")
    with pytest.raises(ImageError, match="nope.png"):
        run("tiny-dream", tmp_path / "nope.png")
    with pytest.raises(UnknownModelError, match="unknown model"):
        run("tiny-dream", photo, model="resnet9000")
    with pytest.raises(PluginError, match="'broken-fx'.*plugin 'tiny'.*ZeroDivisionError"):
        run("broken-fx", photo, weights="random")


def test_cli_run_writes_output_and_report(reg, photo, tmp_path, capsys):
    out, rep = tmp_path / "out.png", tmp_path / "report.json"
    code = main(["run", "tiny-dream", str(photo), "-o", str(out), "-p", "steps=2", "--weights", "random",
                 "--seed", "3", "--report", str(rep), "-q"])
    assert code == 0
    assert PILImage.open(out).size == (48, 40)
    report = json.loads(rep.read_text())
    assert report["seed"] == 3 and report["steps"] == 2 and report["outputs"] == [str(out)]


def test_cli_errors_are_one_line_and_nonzero(reg, photo, tmp_path, capsys):
    cases = [
        (["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "-p", "steps=zero"], "'steps'"),
        (["run", "tiny-dream", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")], "missing.png"),
        (["run", "tiny-dream", str(photo), "-o", str(photo)], "--overwrite"),
        (["run", "nope", str(photo)], "unknown effect"),
        (["show", "nope"], "unknown effect"),
        (["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "--device", "gpu", "--weights",
          "random"], "GPU"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("gradfx: error:") and fragment in err and "\n" not in err, err
        assert "Traceback" not in err


def test_out_of_range_seeds_are_one_line_errors_before_compute(reg, photo, tmp_path, capsys):
    for seed in ("-1", str(2**32)):  # numpy and Keras take 0 .. 2**32 - 1 and raised a bare ValueError
        argv = ["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "--weights", "random",
                f"--seed={seed}"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gradfx: error: seed must be a whole number from 0 to 4294967295"), err
    with pytest.raises(ParameterError, match="seed must be"):
        run_chain([("tiny-dream", {})], photo, seed=2**40)
    assert not (tmp_path / "o.png").exists()


def test_report_never_goes_over_an_input_and_is_checked_before_compute(reg, photo, tmp_path, capsys):
    before = photo.read_bytes()
    out = tmp_path / "o.png"
    base = ["run", "tiny-dream", str(photo), "-o", str(out), "--weights", "random", "-p", "steps=1", "-q"]
    for report, fragment in ((photo, "refusing to write over the input"), (out, "that is the output image"),
                             (tmp_path / "no" / "r.json", "does not exist")):
        assert main([*base, "--report", str(report)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gradfx: error:") and fragment in err and "\n" not in err, err
        assert not out.exists()  # refused before any compute, not after the run
    assert photo.read_bytes() == before  # the input was once replaced by the JSON report
    result = run("tiny-dream", photo, params={"steps": 1}, weights="random")
    with pytest.raises(OutputError, match="refusing to write over the input"):
        result.save(out, protect=[str(photo)], report=photo)
    assert photo.read_bytes() == before


def test_frames_folder_blocked_by_a_file_is_an_output_error(tmp_path):
    frames = [np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.8)]
    result = Result(frames[-1], {}, extras={"frames": frames})
    (tmp_path / "zoom-frames").write_text("a file, not a folder")
    with pytest.raises(OutputError, match="frames folder .*zoom-frames.* cannot be created"):  # was FileExistsError
        result.save(tmp_path / "zoom.png")


def test_cli_size_below_one_names_the_option(reg, photo, tmp_path, capsys):
    assert main(["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "--size", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--size" in err and "not 0" in err and "\n" not in err, err  # it named only the API's longest_side


def test_cli_demo_into_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["demo", "-o", str(tmp_path / "taken"), "-q"]) == 2  # was a FileExistsError traceback
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradfx: error: demo folder") and "choose another folder" in err and "\n" not in err


@pytest.mark.parametrize("argv, message", [
    (["run"], "gradfx run: error: the following arguments are required: effect; see 'gradfx run --help'"),
    (["run", "deepdream", "--seed", "x"], "gradfx run: error: argument --seed: invalid int value: 'x'; see 'gradfx "
                                          "run --help'"),
    (["frob"], "gradfx: error: argument COMMAND: invalid choice: 'frob'"),
])
def test_cli_usage_errors_are_one_line_naming_where_the_fix_is(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith(message) and "\n" not in err, err  # was the usage block first


def test_cli_help_names_only_options_that_exist(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    entry = text[text.index(" models list "):text.index(" plugins list ")]
    assert "--layers" not in entry and "gradfx models NAME" in entry  # it offered a --layers that never existed


def test_cli_list_and_show(reg, capsys):
    assert main(["list"]) == 0
    assert "tiny-dream" in capsys.readouterr().out
    assert main(["show", "tiny-dream", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in shown["params"]] == ["steps", "layer", "channel", "octaves", "optimizer"]
    assert shown["params"][0]["allowed"] == "an integer from 1 to 1000"


def test_missing_file_fails_fast_without_tensorflow(tmp_path):
    code = ("import sys, time; t = time.perf_counter(); from gradfx.tui.cli import main; "
            "rc = main(['run', 'deepdream', 'missing.jpg', '-o', 'x.png']); "
            "print(rc, 'tensorflow' in sys.modules, time.perf_counter() - t)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    rc, tf_loaded, seconds = out.stdout.split()
    assert rc == "2" and tf_loaded == "False", out
    # TensorFlow not imported is the real check; the time bound (TF's import alone takes several seconds)
    # is loose so that a loaded CI machine does not flake it
    assert float(seconds) < 3.0 and time.perf_counter() - started < 15
    assert "missing.jpg" in out.stderr and out.stderr.count("\n") == 1


def test_cli_init_and_direction_paths_resolve_against_the_working_folder(registry, tmp_path, monkeypatch,
                                                                          make_image, capsys):
    from gradfx.engine.images.save import save_image

    for name, kind in (("content", "blobs"), ("style", "stripes"), ("start", "gradient")):
        save_image(tmp_path / f"{name}.png", make_image(32, 32, kind))
    np.save(tmp_path / "v.npy", np.linspace(-1, 1, 64))
    monkeypatch.chdir(tmp_path)
    common = ["--model", "vgg16", "--weights", "random", "-q"]
    st = ["run", "style-transfer", "content.png", "-p", "style=style.png", "-p", "size=32", "-p", "steps=1",
          "-p", "style_layers=block1_conv1", "-p", "content_layers=block1_conv2", *common]
    assert main([*st, "-o", "out.png", "-p", "init=start.png"]) == 0
    out = np.asarray(PILImage.open("out.png"), np.float32) / 255
    assert np.abs(out - make_image(32, 32, "gradient")).mean() < 0.05  # one Adam step from start.png
    assert main(["run", "feature-vis", "-o", "fv.png", "-p", "objective=direction(block1_conv2, 'v.npy')",
                 "-p", "size=32", "-p", "steps=2", *common]) == 0
    assert PILImage.open("fv.png").size == (32, 32)
    capsys.readouterr()
    for argv, fragment in [([*st, "-o", "x.png", "-p", "init=sub/start.png"], "'init': 'sub/start.png' is not one"),
                           ([*st, "-o", "start.png", "-p", "init=start.png"], "over the input start.png"),
                           (["run", "feature-vis", "-o", "x.png", "-p", "objective=direction(block1_conv2, 'w.npy')",
                             *common], "'objective': file 'w.npy' does not exist")]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err


def test_every_name_the_api_exports_is_a_lazy_name_of_the_package():
    # resume_run was in api.__all__ but `from gradfx.engine import resume_run` raised ImportError
    import gradfx.engine
    from gradfx.engine.running import api

    for name in api.__all__:
        assert name in gradfx.engine.__all__, name
        assert getattr(gradfx.engine, name) is getattr(api, name), name


def test_an_error_before_any_step_prints_its_one_line_and_no_blank_line_before_it(reg, photo, tmp_path, capsys):
    # the progress bar was started before the run and printed an empty line when it closed on the error
    assert main(["run", "tiny-dream", str(photo), "-o", str(tmp_path / "o.png"), "--weights", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradfx: error: unknown weights 'bogus'") and err.count("\n") == 1, repr(err)
