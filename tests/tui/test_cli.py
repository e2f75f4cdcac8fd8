"""The command line as a user types it: argument order, what `gradfx show` prints, the closing lines."""

from __future__ import annotations

import json

import pytest
from PIL import Image as PILImage

from gradfx.engine.errors import ParameterError
from gradfx.tui.cli import main


def _size(path) -> tuple[int, int]:
    with PILImage.open(path) as im:
        return im.size


@pytest.mark.parametrize("argv", [
    ["run", "tiny-dream", "-p", "steps=1", "sample.png", "-o", "a.png"],
    ["run", "-o", "a.png", "tiny-dream", "-q", "sample.png", "-p", "steps=1"],
    ["run", "tiny-dream", "-o", "a.png", "-p", "steps=1", "sample.png"],
])
def test_run_takes_options_and_the_input_in_any_order(tiny_registry, sample, capsys, argv):
    # argparse filled `input` (nargs="?") at the first option and refused the image after it
    assert main([*argv, "--weights", "random", "--device", "cpu"]) == 0, capsys.readouterr().err
    assert _size("a.png") == (48, 40)


def test_chain_takes_options_before_the_recipe_and_prints_the_snapshots_folder_once(tiny_registry, sample,
                                                                                     capsys, tmp_path):
    (tmp_path / "r.toml").write_text('[[step]]\neffect = "tiny-dream"\nsteps = 1\n')
    assert main(["chain", "-o", "b.png", "--snapshots", "snaps/", "r.toml", "--weights", "random",
                 "sample.png", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert _size("b.png") == (48, 40) and (tmp_path / "snaps").is_dir()
    assert "kept each step's output in snaps/\n" in err, err  # was snaps//


def test_a_run_prints_no_blank_line_on_stderr(tiny_registry, sample, capsys):
    # Rich's progress bar, stopped on a stderr that is not a terminal, printed an empty line before `wrote ...`
    assert main(["run", "tiny-dream", "sample.png", "-o", "c.png", "--weights", "random", "-p", "steps=1"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.strip() for line in lines), lines
    assert lines[-1].startswith("wrote c.png")


@pytest.mark.parametrize("command", ["run", "chain"])
def test_a_fall_back_is_said_before_any_compute_and_not_again(tiny_registry, sample, capsys, monkeypatch, tmp_path,
                                                             no_trained_vgg16, command):
    # "runs on vgg16" and "no ImageNet weights" arrived after 40-70 s of compute
    from gradfx.tui.commands import chain, run

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file: auto falls back to random
    module = run if command == "run" else chain
    real, before = module.execute, []

    def execute(plan, **options):
        before.append(capsys.readouterr().err)  # what was said when compute began
        return real(plan, **options)

    monkeypatch.setattr(module, "execute", execute)
    (tmp_path / "r.toml").write_text('[[step]]\neffect = "tiny-dream"\nsteps = 1\n')
    argv = (["run", "tiny-dream"] if command == "run" else ["chain", "r.toml"]) + ["sample.png", "-o", "a.png"]
    assert main([*argv, "-p", "steps=1"] if command == "run" else argv) == 0
    after = capsys.readouterr().err
    assert len(before) == 1 and before[0].startswith("gradfx: warning: no ImageNet weights for vgg16"), before
    assert before[0].count("\n") == 1 and "random weights" in before[0]
    assert "warning" not in after and after.startswith("wrote a.png"), after  # once


def test_show_is_a_line_a_parameter_at_80_columns_and_v_adds_each_help_whole(registry, capsys, monkeypatch,
                                                                             tmp_path, no_trained_vgg16):
    """`gradfx show style-transfer` was 120 lines at 80 columns (deepdream 99 for 20 parameters)."""
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe gets
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file, no trained VGG16: vgg19's own
    from gradfx.engine.registry import get_registry

    eff = get_registry().effect("style-transfer")
    assert main(["show", "style-transfer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert len(lines) <= len(eff.schema) + 14, len(lines)
    rows = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    for p in eff.schema:  # its line: the default on the model a run uses here, and what is allowed
        row = rows[p.name]
        default = p.format(p.default_for("vgg19")) or ("required" if p.required else "-")
        said = " ".join(lines[lines.index(row):lines.index(row) + 3])  # a long default has its own line
        assert said.split()[1].rstrip("*") == default and p.brief(32) in said, said
        assert not p.help or p.help not in " ".join(lines)  # the help only with -v
    assert rows["style_weight"].split()[1] == "0.01*" and rows["content_weight"].split()[1] == "10000"

    assert main(["show", "style-transfer", "-v"]) == 0
    out = capsys.readouterr().out
    blocks = {block.split()[0]: block for block in out.split("\n\n")[1:]}
    for p in eff.schema:
        block = blocks[p.name]
        assert all(len(line) <= 80 for line in block.splitlines()), block
        assert all(line.startswith("    ") for line in block.splitlines()[1:]), block  # wrapped under the name
        if p.help:
            assert " ".join(p.help.split()) in " ".join(block.split()), block
        for model, value, origin in p.model_defaults:  # each model's default with where it comes from
            said = f"{model} {p.format(value) or 'none'} ({' '.join(origin.split())})"
            assert said in " ".join(block.split()), block


def test_show_heads_with_the_model_a_run_would_use_here_and_lists_its_defaults(registry, capsys, monkeypatch,
                                                                              tmp_path):
    # "default model: inception_v3" headed it where a run (offline, the trained VGG16 installed) uses vgg16
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert main(["show", "deepdream"]) == 0
    out = capsys.readouterr().out
    assert "a run here uses vgg16: its own model, inception_v3, has no trained weights here" in out
    layers = next(line for line in out.splitlines() if line.startswith("layers "))
    assert layers.split()[1] == "block4_conv3:1.0,block5_conv1:1.0*"  # vgg16's, marked as one of several
    assert main(["show", "deepdream", "--model", "inception_v3"]) == 0
    out = capsys.readouterr().out
    assert "defaults on inception_v3" in out
    assert next(line for line in out.splitlines() if line.startswith("layers ")).split()[1].startswith("mixed4")
    assert main(["show", "deepdream", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"] == "inception_v3" and shown["model_here"] == "vgg16"
    assert next(p for p in shown["params"] if p["name"] == "max_loss")["default_here"] == "0"


def test_show_an_effect_that_reads_no_backbone(registry, capsys, monkeypatch):
    """fast-style runs networks of its own: show names them, and --model is refused in one line (the table's
    heading took the length of its model, None)."""
    monkeypatch.setenv("COLUMNS", "80")
    for argv in (["show", "fast-style"], ["show", "fast-style", "-v"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "reads no backbone: runs the networks adain-vgg19-encoder, adain-decoder" in " ".join(out.split())
        assert "alpha" in out and all(len(line) <= 80 for line in out.splitlines())
    assert main(["show", "fast-style", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"] is None and shown["networks"] == ["adain-vgg19-encoder", "adain-decoder"]
    assert main(["show", "fast-style", "--model", "vgg16"]) == 2
    assert "reads no backbone model" in capsys.readouterr().err


def test_show_json_is_unchanged_by_the_width(registry, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["show", "deepdream", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["effect"] == "deepdream" and all("help" in p for p in shown["params"])


def test_size_is_the_output_s_size_too_unless_the_effect_s_size_is_set(registry, tmp_path, make_image, capsys,
                                                                       monkeypatch):
    # --size 64 resized the input, and style-transfer's own size (512 by default) made a 512 px image
    from gradfx.engine.images.save import save_image

    monkeypatch.chdir(tmp_path)
    save_image("photo.png", make_image(60, 90))
    save_image("s.png", make_image(48, 48, "stripes"))
    common = ["photo.png", "-p", "style=s.png", "-p", "steps=1", "--weights", "random", "-q"]
    assert main(["run", "style-transfer", *common, "--size", "64", "-o", "a.png"]) == 0, capsys.readouterr().err
    assert max(_size("a.png")) == 64
    assert main(["run", "style-transfer", *common, "--size", "64", "-p", "size=80", "-o", "b.png"]) == 0
    assert max(_size("b.png")) == 80  # the effect's own size, said explicitly, decides the output


def test_gradfx_models_reads_at_80_columns_a_block_a_model(registry, monkeypatch, capsys):
    # a table's summary column was 13 characters wide at 80 ("block1_conv1" then a lone ","; "HED-fine-tu")
    from gradfx.engine.modelspecs import BUILTIN_MODELS

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    blocks = {block.split()[0]: " ".join(block.split()) for block in out.split("\n\n")}
    for spec in BUILTIN_MODELS:
        block = blocks[spec.name]
        assert " ".join(spec.summary.split()) in block and f"min {spec.min_size} px" in block
        assert f"default layers: {', '.join(spec.default_layers)}" in block  # whole names
        assert "weights now (auto): " in block
    assert "HED-fine-tuned VGG16" in blocks["vgg16"]


def test_a_size_beyond_the_pixel_limit_is_refused_in_a_line_before_any_pixel_is_made(registry, tmp_path,
                                                                                     make_image, capsys,
                                                                                     monkeypatch):
    """`--size 100000` resized a photo to 100000 px and passed 10 GB in 33 s: the size a user asks for gets the
    decompression-bomb limit too, before the resize allocates anything, and the error names --size."""
    from gradfx.engine.images.arrays import resize_longest
    from gradfx.engine.images.save import save_image

    photo = tmp_path / "photo.png"
    save_image(photo, make_image(40, 60))

    def no_resize(*args, **kwargs):
        raise AssertionError("resized before the size was checked")

    def no_weights(*args, **kwargs):
        raise AssertionError("a network's weights were looked for (and fetched) before the size was checked")

    monkeypatch.setattr(PILImage.Image, "resize", no_resize)
    monkeypatch.setattr("gradfx.engine.running.plan.choose", no_weights)
    assert main(["run", "deepdream", str(photo), "-o", str(tmp_path / "o.png"), "--size", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradfx: error: --size 100000 asks for a 100000x66667 image") and err.count("\n") == 1
    assert "GRADFX_MAX_PIXELS" in err and "at most 16383" in err
    # an effect whose own size parameter --size sets: said of --size, which the user typed
    assert main(["run", "feature-vis", "-o", str(tmp_path / "f.png"), "--size", "9000"]) == 2
    assert capsys.readouterr().err == ("gradfx: error: --size 9000: feature-vis makes images of at most 4096 px on "
                                       "a side; use --size 4096 or less\n")
    monkeypatch.setenv("GRADFX_MAX_PIXELS", "1000")  # the same limit as a decoded input's
    with pytest.raises(ParameterError, match="size 64 asks for a 64x43 image"):
        resize_longest(make_image(40, 60), 64)
