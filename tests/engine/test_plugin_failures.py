"""What a plugin author sees when their effect or plugin goes wrong (issue 16): one clear line, the image kept
where there is one, the parameter named, the plugin's true status."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TinyDream, TinyPlugin

from gradfx.engine import run
from gradfx.engine.errors import ParameterError, PluginError
from gradfx.tui.cli import main


class TracedKeyError(TinyDream):
    name = "traced-keyerror"

    def build(self, ctx, params):
        from gradfx.engine import Problem
        from gradfx.engine.objectives import Objective

        return Problem(Objective(lambda f, c: f["no-such-key"], "broken", {"block1_conv1"}),
                       init=ctx.input.rgb, steps=2, optimizer="sgd", lr=0.01)


class FinishFails(TinyDream):
    name = "finish-fails"

    def finish(self, ctx, params, solution):
        raise RuntimeError("the contact sheet broke")


def test_an_exception_inside_a_traced_objective_names_its_type_once(registry, make_image):
    registry.add_plugin(TinyPlugin(TracedKeyError()), "tiny")
    with pytest.raises(PluginError) as caught:
        run("traced-keyerror", make_image(40, 40), weights="random")
    message = str(caught.value)
    assert "KeyError" in message and message.count("KeyError") == 1, message  # was KeyError: KeyError: '...'
    assert "\n" not in message


def test_an_exception_in_finish_keeps_the_solved_image_as_a_partial_output(registry, make_image, tmp_path, capsys):
    registry.add_plugin(TinyPlugin(FinishFails(), TinyDream()), "tiny")
    image = make_image(40, 48)
    result = run("finish-fails", image, params={"steps": 2}, weights="random", seed=3)
    solved = run("tiny-dream", image, params={"steps": 2}, weights="random", seed=3).image
    assert result.partial and result.report["status"] == "failed"
    np.testing.assert_array_equal(result.image, solved)  # every step's work, not lost
    assert any("the contact sheet broke" in w and "partial" in w for w in result.report["warnings"])
    # the command line writes it, says so, and fails
    from gradfx.engine.images.save import save_image

    save_image(tmp_path / "in.png", image)
    code = main(["run", "finish-fails", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                 "--weights", "random", "-p", "steps=2"])
    err = capsys.readouterr().err
    assert code == 2 and (tmp_path / "out.png").is_file(), err
    assert "the contact sheet broke" in err and "partial" in err


def test_an_unknown_layer_names_the_parameter_that_gave_it(registry, make_image):
    registry.add_plugin(TinyPlugin(), "tiny")
    with pytest.raises(ParameterError, match=r"parameter 'layer': unknown layer 'no_such_layer'"):
        run("tiny-dream", make_image(40, 40), params={"layer": "no_such_layer"}, weights="random")

