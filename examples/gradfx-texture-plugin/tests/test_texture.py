"""texture on seeded random VGG16 weights and small generated textures: behaviour, not just "it ran"."""

from __future__ import annotations

import numpy as np
import pytest

ENGINE = {"model": "vgg16", "weights": "random", "seed": 1}


def stripes(h: int = 48, w: int = 48) -> np.ndarray:
    """Warm vertical stripes, 8 px apart."""
    x = np.arange(w, dtype=np.float32)[None, :, None]
    wave = 0.5 + 0.4 * np.sin(2 * np.pi * x / 8)
    return np.broadcast_to(np.concatenate([0.9 * wave, 0.5 * wave, 0.1 + 0 * wave], -1), (h, w, 3)).copy()


def test_the_output_takes_the_textures_statistics_from_noise(registry):
    from gradfx.engine import run

    texture = stripes()
    result = run("texture", None, params={"texture": texture, "size": 48, "steps": 40,
                                          "layers": "block1_conv1,block2_conv1"}, **ENGINE)
    out, losses = result.image, result.report["losses"]
    assert out.shape == (48, 48, 3)
    # L-BFGS's losses are its evaluations, line-search trials included; the image is the best one's
    assert min(losses) < 0.05 * losses[0]  # the Gram distance fell twentyfold from the noise's
    # the colours: from grey noise to the texture's warm mean
    assert np.abs(out.mean((0, 1)) - texture.mean((0, 1))).max() < 0.1
    # the stripes' orientation: more change along a row than down a column, as in the texture
    across, down = np.abs(np.diff(out, axis=1)).mean(), np.abs(np.diff(out, axis=0)).mean()
    assert across > 1.5 * down, (across, down)


def test_the_same_seed_makes_the_same_image_from_a_file_or_an_array_and_another_seed_another(registry, tmp_path):
    from PIL import Image

    from gradfx.engine import run

    pixels = (stripes() * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "stripes.png")
    params = {"size": 40, "steps": 3, "layers": "block1_conv1"}
    a = run("texture", None, params={**params, "texture": pixels}, **ENGINE)
    b = run("texture", None, params={**params, "texture": str(tmp_path / "stripes.png")}, **ENGINE)
    c = run("texture", None, params={**params, "texture": pixels}, **{**ENGINE, "seed": 2})
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    assert a.report["plugin"] == "texture-test" and a.report["params"]["texture"].startswith("<array 48x48 #")


def test_mistakes_are_one_line_errors_before_any_compute(registry, tmp_path):
    from gradfx.engine import ParameterError, run

    with pytest.raises(ParameterError, match="parameter 'texture' is required"):
        run("texture", None, params={"size": 48}, **ENGINE)
    with pytest.raises(ParameterError, match="parameter 'aspect'.*below vgg16's minimum"):
        run("texture", None, params={"texture": stripes(), "size": 48, "aspect": 8}, **ENGINE)
    with pytest.raises(ParameterError, match="takes no input image"):
        run("texture", stripes(), params={"texture": stripes()}, **ENGINE)


def test_cli_writes_the_texture_and_never_over_an_existing_file(registry, tmp_path, capsys):
    from PIL import Image

    from gradfx.tui.cli import main

    texture, out = tmp_path / "stripes.png", tmp_path / "out.png"
    Image.fromarray((stripes() * 255).astype(np.uint8)).save(texture)
    argv = ["run", "texture", "-o", str(out), "-q", "--weights", "random", "--model", "vgg16", "-p",
            f"texture={texture}", "-p", "size=40", "-p", "steps=2", "-p", "layers=block1_conv1"]
    assert main(argv) == 0 and Image.open(out).size == (40, 40)
    assert main(argv) == 2 and "exists" in capsys.readouterr().err  # no --overwrite
