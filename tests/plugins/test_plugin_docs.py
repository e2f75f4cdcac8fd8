"""docs/plugins.md as a plugin author uses it: a plugin made from its snippets alone builds, registers and
runs, and its objective of one's own works with an aligned mask, whole and tiled."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks(lang: str, marker: str) -> str:
    found = [code for kind, code in re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), re.S)
             if kind == lang and marker in code]
    assert found, f"docs/plugins.md has no {lang} block with {marker!r}"
    return found[0]


@pytest.fixture
def posterize(tmp_path, monkeypatch):
    """The docs' package: pyproject.toml, and gradfx_posterize/__init__.py = the effect + the hook."""
    package = tmp_path / "gradfx-posterize"
    (package / "gradfx_posterize").mkdir(parents=True)
    (package / "pyproject.toml").write_text(_blocks("toml", "[project]"))
    (package / "gradfx_posterize" / "__init__.py").write_text(
        _blocks("python", "class PosterizeDream") + "\n\n" + _blocks("python", "def gradfx_register_effects"))
    monkeypatch.syspath_prepend(str(package))
    yield package
    sys.modules.pop("gradfx_posterize", None)


def test_the_documented_pyproject_builds_a_wheel_with_the_entry_point(posterize, tmp_path):
    # as written, the snippet failed: "project must contain ['version']"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                           "-w", str(tmp_path / "dist"), str(posterize)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("gradfx_posterize-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gradfx_posterize/__init__.py" in names
    assert "[gradfx]" in entry_points and "posterize = gradfx_posterize" in entry_points


def test_the_documented_plugin_registers_and_runs(posterize, registry, make_image):
    import gradfx_posterize

    from gradfx.engine import run

    info = registry.add_plugin(gradfx_posterize, "posterize-docs")
    assert info.ok, info.errors
    result = run("posterize-dream", make_image(48, 48), params={"levels": 3, "steps": 3}, weights="random",
                 seed=1)
    assert len(np.unique(np.round(result.image * 255))) <= 3


@pytest.mark.parametrize("tile", [0, 40])
def test_the_documented_objective_reads_an_aligned_mask_whole_and_tiled(registry, make_image, tile):
    namespace: dict = {}
    exec(_blocks("python", "def masked_layer_mean"), namespace)  # noqa: S102 - the docs' own code
    masked_layer_mean = namespace["masked_layer_mean"]

    from gradfx.engine import Effect, Int, Problem, hookimpl, run

    mask = np.zeros((64, 64, 1), np.float32)
    mask[:, :32] = 1.0  # the left half only

    class Masked(Effect):
        name = "masked-dream"
        summary = "a layer's mean activation under a mask"
        params = (Int("tile", 0, "tile size"),)
        model = "vgg16"

        def build(self, ctx, params):
            return Problem(objective=masked_layer_mean("block1_conv2"), init=ctx.input.rgb, maximize=True,
                           steps=4, optimizer="sgd", lr=0.05, normalize="std", aligned={"mask": mask},
                           tile=params["tile"])

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(Masked())

    registry.add_plugin(Plugin(), "masked")
    image = make_image(64, 64)
    result = run("masked-dream", image, params={"tile": tile}, weights="random", seed=2)
    assert str(masked_layer_mean("block1_conv2")) == "masked_layer_mean(block1_conv2)"
    change = np.abs(result.image - image).mean(axis=(0, 2))  # per column
    assert change[:28].mean() > 5 * change[36:].mean()  # the masked half changed, the other hardly
    if tile == 0:
        assert result.report["losses"][-1] > result.report["losses"][0]


def test_the_documented_build_reads_a_mask_parameter_from_a_file_or_an_array(registry, make_image, tmp_path):
    # the guide's line was `ctx.image(params["mask"])[..., :1]`: TypeError, 'LoadedImage' is not subscriptable
    namespace: dict = {}
    exec(_blocks("python", "def masked_layer_mean"), namespace)  # noqa: S102 - the docs' own code
    snippet = _blocks("python", "# in build(), with Image(\"mask\"")

    from PIL import Image as PILImage

    from gradfx.engine import Effect, Image, Int, Problem, hookimpl, run

    class Masked(Effect):
        name = "masked-docs"
        summary = "the docs' build(), as written"
        params = (Image("mask", "where to dream (white)", required=True), Int("steps", 4, "steps"))
        model = "vgg16"

        def build(self, ctx, params):
            scope = {**namespace, "ctx": ctx, "params": params, "Problem": Problem}
            exec(snippet, scope)  # noqa: S102
            return scope["problem"]

    class Plugin:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(Masked())

    registry.add_plugin(Plugin(), "masked-docs")
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255  # the left half
    PILImage.fromarray(mask).save(tmp_path / "mask.png")
    image = make_image(64, 64)
    for value in (str(tmp_path / "mask.png"), mask):
        result = run("masked-docs", image, params={"mask": value}, weights="random", seed=2)
        change = np.abs(result.image - image).mean(axis=(0, 2))  # per column
        assert change[:28].mean() > 5 * change[36:].mean()
