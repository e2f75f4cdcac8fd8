"""posterize-dream on seeded random weights and a small generated image: behaviour, not just "it ran"."""

from __future__ import annotations

import numpy as np
import pytest


def image(h: int = 64, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([x / w, y / h, 0.5 + 0.4 * np.sin((x + y) / 5)], -1).astype(np.float32)


def test_it_registers_with_valid_parameters(registry):
    effect = registry.effect("posterize-dream")
    assert registry.effect_plugin["posterize-dream"] == "posterize-test"
    assert effect.schema.resolve({"levels": "3"})["levels"] == 3


def test_a_bad_value_names_the_parameter(registry):
    from gradfx.engine import ParameterError, run

    with pytest.raises(ParameterError, match="levels"):
        run("posterize-dream", image(), params={"levels": 1}, weights="random")


def test_output_is_posterised_and_the_layer_activation_rises(registry):
    from gradfx.engine import run

    result = run("posterize-dream", image(),
                 params={"levels": 3, "steps": 8, "step_size": 0.05, "layer": "block2_conv2"},
                 weights="random", seed=1)
    out = result.image
    assert out.shape == (64, 64, 3)
    assert set(np.unique(np.round(out * 2, 4))) <= {0.0, 1.0, 2.0}  # three levels per channel
    losses = result.report["losses"]
    assert losses[-1] > losses[0]  # the ascent raised the layer's mean activation
    assert result.report["plugin"] == "posterize-test"
    assert result.report["levels"] == 3


def test_cli_run_writes_an_image(registry, tmp_path):
    from PIL import Image

    from gradfx.tui.cli import main

    src = tmp_path / "in.png"
    Image.fromarray((image() * 255).astype(np.uint8)).save(src)
    out = tmp_path / "out.png"
    code = main(["run", "posterize-dream", str(src), "-o", str(out), "-q", "--weights", "random",
                 "-p", "steps=2", "-p", "levels=2"])
    assert code == 0 and out.is_file()
    assert len(np.unique(np.asarray(Image.open(out)))) <= 2
