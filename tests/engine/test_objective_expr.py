"""The objective expression parser: what it accepts, what it builds, and how it points at what it rejects."""

import re

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine import objectives as O
from gradfx.engine.errors import ParameterError
from gradfx.engine.objectives import StepContext
from gradfx.plugins.feature_vis.objective_language import parse_objective

CHANNELS = {"mixed4": 768, "mixed5": 768, "block4_conv1": 512}


def build(text, **kw):
    return parse_objective(text).build(CHANNELS, **kw)


@pytest.mark.parametrize("text, description", [
    ("mixed4:97", "channel(mixed4, 97)"),
    ("block4_conv1:12 - 0.5*block4_conv1:3", "channel(block4_conv1, 12) - 0.5 * channel(block4_conv1, 3)"),
    ("layer(mixed5)", "layer_l2(mixed5)"),
    ("mean(mixed5)", "layer_mean(mixed5)"),
    ("neuron(mixed4, 97)", "neuron(mixed4, 97)"),
    ("neuron(mixed4, 97, 3, 4)", "neuron(mixed4, 97, 3, 4)"),
    ("channel(mixed4, 97)", "channel(mixed4, 97)"),
    ("direction(mixed4, [1, -0.5])", "direction(mixed4, <2 values>)"),
    ("diversity(mixed4)", "diversity(mixed4)"),
    ("-2 * (l1 + tv) - blur", "-2 * (l1() + total_variation()) - blur()"),
    ("(mixed4:1 + mixed4:2) / 2", "0.5 * (channel(mixed4, 1) + channel(mixed4, 2))"),
    ("- -mixed4:1", "-(-channel(mixed4, 1))"),
    ("mixed4:1 * mixed5:2", "channel(mixed4, 1) * channel(mixed5, 2)"),
    ("l1(0.3)", "l1(0.3)"),
])
def test_accepts_the_grammar_and_builds_readable_objectives(text, description):
    assert str(build(text)) == description


def test_a_channel_range_is_a_batch_with_one_channel_per_image():
    parsed = parse_objective("mixed4:3-5 - 0.1*tv")
    assert parsed.batch == 3 and parsed.channel_range == ("mixed4", [3, 4, 5], 0)
    assert parsed.labels(3) == ["mixed4:3", "mixed4:4", "mixed4:5"]
    obj = parsed.build(CHANNELS)
    feats = {"mixed4": tf.constant(np.random.default_rng(0).random((3, 2, 2, 768)), tf.float32)}
    image = tf.zeros((3, 4, 4, 3))
    expected = np.mean([feats["mixed4"][i, ..., 3 + i].numpy().mean() for i in range(3)])
    assert float(obj(feats, StepContext(image=image))) == pytest.approx(expected, rel=1e-5)
    # with spaces, '-' is subtraction, not a range
    assert parse_objective("mixed4:3 - 5*tv").batch == 1


def test_direction_reads_vectors_from_numbers_lists_and_npy_files(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(768, dtype=np.float32))
    a = parse_objective("direction(mixed4, 'v.npy')").build(CHANNELS, base_dir=tmp_path)
    feats = {"mixed4": tf.ones((1, 2, 2, 768))}
    assert float(a(feats, StepContext(image=tf.zeros((1, 4, 4, 3))))) == pytest.approx(np.arange(768).mean())
    b = build("direction(mixed4, 1, 2)")
    with pytest.raises(ParameterError, match="2 values but layer mixed4 has 768 channels"):
        b(feats, StepContext(image=tf.zeros((1, 4, 4, 3))))


def test_logit_and_diversity_objectives():
    kernel = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    bias = np.arange(4, dtype=np.float32)
    feats = {"fc2": tf.constant(np.random.default_rng(2).normal(size=(2, 6)), tf.float32)}
    ctx = StepContext(image=tf.zeros((2, 4, 4, 3)))
    obj = build("logit(2) - tv", logit=lambda n: O.logit(n, "fc2", kernel, bias))
    expected = (feats["fc2"].numpy() @ kernel[:, 2] + 2).mean()
    assert float(obj(feats, ctx)) == pytest.approx(expected, rel=1e-5)
    assert str(obj) == "logit(2) - total_variation()"
    same = tf.ones((3, 2, 2, 5))
    assert float(O.diversity("x")({"x": same}, ctx)) == pytest.approx(-1.0)
    apart = tf.constant(np.eye(3, 5)[:, None, None, :] * np.ones((3, 2, 2, 5)), tf.float32)
    assert float(O.diversity("x")({"x": apart}, ctx)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("text, position, fragment", [
    ("mixed4:9x7", 8, "unexpected 'x'"),
    ("mixed4:", 7, "expected a channel number"),
    ("mixed4:1.5", 7, "expected a channel number"),
    ("mixed4", 0, "neither a layer:channel nor a function"),
    ("mixed4:1 +", 10, "expected a layer:channel"),
    ("(mixed4:1", 9, "expected ')'"),
    ("mixed4:1 $ 2", 9, "unexpected '$'"),
    ("mixed4:1 mixed4:2", 9, "unexpected 'mixed4'"),
    ("foo(mixed4)", 0, "unknown function 'foo'"),
    ("layr(mixed4)", 0, "did you mean 'layer'"),
    ("channel(mixed4)", 0, "usage: channel(LAYER, N)"),
    ("channel(mixed4, 1.5)", 16, "whole number"),
    ("neuron(3, 1)", 7, "needs a layer name first"),
    ("mixed4:5-2", 8, "runs backwards"),
    ("mixed4:0-3 + mixed5:0-3", 13, "a second channel range"),
    ("3 * 4", 0, "only a number"),
    ("", 0, "empty"),
    ("mixed4:1 / mixed4:2", 9, "division by an objective"),
    ("mixed4:1 / 0", 9, "division by zero"),
    ("__import__('os')", 0, "unknown function '__import__'"),
    ("mixed4:1; tv", 8, "unexpected ';'"),
    ("logit(3)", 0, "needs a model with a classifier top"),
    ("mixed9:1", 0, "unknown layer 'mixed9'"),
    ("tv - mixed4:768", 12, "channel 768"),
    ("direction(mixed4, mixed5)", 18, "direction() takes numbers"),
])
def test_rejects_everything_outside_the_grammar_with_its_position(text, position, fragment):
    with pytest.raises(ParameterError) as info:
        build(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"objective {text!r}: ")
    assert fragment in message
    assert re.search(rf"at position {position}\b", message)
    head, here = message.rsplit("; here: ", 1)
    assert here == text[:position] + "^" + text[position:]


def test_parsing_does_not_need_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from gradfx.plugins.feature_vis.objective_language import parse_objective; "
            "parse_objective('mixed4:0-3 - 0.5*layer(mixed5)'); assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
