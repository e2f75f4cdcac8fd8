"""The ``precision`` option: a bfloat16 backbone gives float32 features close to float32's, and a bfloat16
style-transfer-like solve reaches distances within tolerance of the float32 solve."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine import models
from gradfx.engine.errors import ParameterError
from gradfx.engine.objectives import Objective, gram_matrix
from gradfx.engine.solver import Problem, Solver

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")


def _extractor():
    return models.get_extractor("vgg19", LAYERS, "random", seed=0)


def test_bfloat16_extractor_is_cached_and_returns_float32_close_to_float32(make_image):
    ext = _extractor()
    low = ext.with_precision("bfloat16")
    assert low is ext.with_precision("bfloat16") and low.precision == "bfloat16"
    assert low.with_precision("float32") is ext and ext.precision == "float32"
    x = tf.constant(make_image(48, 48)[None])
    a, b = ext(x), low(x)
    for name in LAYERS:
        assert b[name].dtype == tf.float32
        rel = float(tf.norm(a[name] - b[name]) / tf.norm(a[name]))
        assert rel < 0.05, (name, rel)
    with pytest.raises(ParameterError, match="precision"):
        ext.with_precision("float16")


def _style_problem(content: np.ndarray, style: np.ndarray, precision: str) -> Problem:
    ext = _extractor()  # targets from float32 features, so both runs aim at the same thing
    s_feats, c_feats = ext(style[None]), ext(content[None])
    grams = {n: gram_matrix(s_feats[n]) for n in LAYERS}

    def fn(f, ctx):
        style_d = tf.add_n([tf.reduce_mean(tf.square(gram_matrix(f[n]) - grams[n])) for n in LAYERS])
        content_d = tf.reduce_mean(tf.square(f["block3_conv1"] - c_feats["block3_conv1"]))
        return 1e-2 * style_d + content_d

    return Problem(objective=Objective(fn, "style+content", set(LAYERS)), init=content, steps=25,
                   optimizer="adam", lr=0.02, precision=precision)


def test_bfloat16_solve_matches_float32_within_tolerance(make_image):
    content, style = make_image(48, 48, "blobs"), make_image(48, 48, "stripes", seed=1)
    runs = {}
    for precision in ("float32", "bfloat16"):
        solver = Solver(_style_problem(content, style, precision), _extractor(), min_size=32)
        assert solver.extractor.precision == precision
        sol = solver.run()
        assert solver.traces == 1 and sol.status == "done"
        runs[precision] = sol
    f32, bf16 = runs["float32"].losses, runs["bfloat16"].losses
    assert f32[-1] < 0.5 * f32[0]  # it optimised
    assert abs(bf16[-1] - f32[-1]) <= 0.05 * f32[-1]


def test_unknown_precision_is_a_parameter_error():
    with pytest.raises(ParameterError, match="precision 'fp8'"):
        Problem(objective=Objective(lambda f, c: tf.constant(0.0), "zero"), size=(8, 8),
                precision="fp8").validate()
