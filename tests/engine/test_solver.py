"""The shared optimisation loop, on a tiny fixed conv net so each test takes well under a second."""

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError
from gradfx.engine.objectives import Objective, channel, layer_mean, total_variation
from gradfx.engine.optimise import tiling
from gradfx.engine.optimise.schedule import octave_sizes, reinject_detail, resize, tile_spans, tiles
from gradfx.engine.optimise.solver import Problem, Solver, solve
from gradfx.engine.progress import CancelToken

KERNEL = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 8)).astype(np.float32))


def tiny(images):
    """A one-layer 'network': a fixed random 3x3 conv and ReLU."""
    return {"conv": tf.nn.relu(tf.nn.conv2d(images * 2.0 - 1.0, KERNEL, 1, "SAME"))}


def img(h=24, w=32, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_maximising_a_channel_raises_it_and_keeps_pixels_in_range():
    p = Problem(channel("conv", 3), init=img(), maximize=True, steps=15, optimizer="sgd", lr=0.05,
                normalize="std")
    sol = solve(p, tiny)
    assert sol.losses[-1] > 2 * sol.losses[0]
    assert sol.image.min() >= 0.0 and sol.image.max() <= 1.0 and sol.image.shape == (24, 32, 3)
    assert sol.status == "done" and len(sol.step_seconds) == 15


def test_minimising_with_adam_lowers_the_loss():
    sol = solve(Problem(total_variation(), init=img(), steps=20, optimizer="adam", lr=0.02), None)
    assert sol.losses[-1] < 0.5 * sol.losses[0]


def test_step_is_traced_once_per_shape():
    p = Problem(channel("conv", 0), init=img(32, 32), maximize=True, steps=6, optimizer="sgd", lr=0.01,
                octaves=3, octave_scale=1.5)
    solver = Solver(p, tiny)
    sol = solver.run()
    assert len(sol.sizes) == 3 and sol.steps == 18
    assert solver.traces == 3


def test_same_seed_repeats_bit_for_bit_and_another_seed_differs():
    def run(seed):
        jitter = lambda x, s: tf.roll(x, tf.random.stateless_uniform([2], s, 0, 4, tf.int32), axis=(1, 2))
        p = Problem(channel("conv", 1), size=(24, 24), maximize=True, steps=8, lr=0.05, transforms=[jitter])
        return solve(p, tiny, seed=seed).image

    a, b, c = run(3), run(3), run(4)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_optimiser_updates_only_the_image():
    before = KERNEL.numpy().copy()
    solve(Problem(channel("conv", 0), init=img(), maximize=True, steps=3, lr=0.1), tiny)
    np.testing.assert_array_equal(KERNEL.numpy(), before)


def test_cancel_returns_image_so_far():
    token = CancelToken()
    events = []

    def progress(ev):
        events.append(ev)
        if ev.step == 4:
            token.cancel()

    sol = solve(Problem(channel("conv", 2), init=img(), maximize=True, steps=50, lr=0.05), tiny,
                progress=progress, cancel=token)
    assert sol.status == "cancelled" and sol.partial and sol.steps == 4
    assert not np.allclose(sol.image, img())  # the work so far is kept
    assert events[-1].preview().shape == (24, 32, 3)
    assert events[-1].eta is not None and events[-1].fraction == pytest.approx(4 / 50)


def test_the_eta_leaves_out_the_first_step_which_traces_the_model():
    # a 4 s run was predicted 1105 s: its first step's 3.7 s of tracing, spread over the 299 steps left
    from gradfx.engine.progress import ProgressEvent

    events: list[ProgressEvent] = []
    solve(Problem(channel("conv", 2), init=img(), maximize=True, steps=5, lr=0.05), tiny, progress=events.append)
    first = events[0]
    assert first.eta is None  # nothing but the tracing step to go on
    assert all((e.warmup_elapsed, e.warmup_step) == (first.elapsed, first.total_step) for e in events)
    e = events[2]
    assert e.eta == pytest.approx((e.elapsed - first.elapsed) / (e.total_step - first.total_step)
                                  * (e.total_steps - e.total_step))
    traced = ProgressEvent("s", 0, 1, 3, 300, 0.0, elapsed=3.72, total_step=3, total_steps=300,
                           warmup_elapsed=3.7, warmup_step=1)
    assert traced.eta == pytest.approx(0.01 * 297)  # 10 ms a step after the first: 3 s, not 1105 s


def test_non_finite_loss_stops_and_keeps_last_finite_image():
    calls = tf.Variable(0)

    def exploding(f, c):
        calls.assign_add(1)
        return tf.where(calls > 3, tf.constant(np.nan, tf.float32), tf.reduce_mean(f["conv"]))

    sol = solve(Problem(Objective(exploding, "explodes", {"conv"}), init=img(), maximize=True, steps=10,
                        lr=0.05), tiny)
    assert sol.status == "non-finite" and "step 4" in sol.message and sol.steps == 3
    assert np.all(np.isfinite(sol.image))


def test_max_loss_stops_a_stage_early():
    sol = solve(Problem(channel("conv", 3), init=img(), maximize=True, steps=100, optimizer="sgd", lr=0.05,
                        normalize="std", max_loss=0.0), tiny)
    assert sol.status == "max_loss" and sol.steps == 1


def test_tiled_gradient_equals_whole_image_gradient_for_a_local_objective():
    # a per-pixel objective is separable, so summing tile gradients must reproduce the whole-image one
    x = img(40, 40)
    obj = Objective(lambda f, c: tf.reduce_sum(tf.square(c.image - 0.25)), "sq")
    whole = solve(Problem(obj, init=x, steps=3, optimizer="sgd", lr=0.01), None)
    tiled = solve(Problem(obj, init=x, steps=3, optimizer="sgd", lr=0.01, tile=16), None)
    np.testing.assert_allclose(tiled.image, whole.image, atol=1e-5)
    np.testing.assert_allclose(tiled.losses, whole.losses, rtol=1e-5)


def test_banded_tiled_update_equals_the_whole_image_update_for_a_local_objective():
    # SGD on a normalised gradient takes the banded path (rolled tiles read as wrapped bands, gradients in a
    # bfloat16 buffer, the update band by band): the same steps as the whole image, up to bfloat16 rounding
    x = img(40, 40)
    obj = Objective(lambda f, c: tf.reduce_sum(tf.square(c.image - 0.25)), "sq")
    kw = dict(init=x, steps=3, optimizer="sgd", lr=0.01, normalize="std")
    whole = solve(Problem(obj, **kw), None)
    solver = Solver(Problem(obj, tile=16, **kw), None)
    assert solver.banded
    tiled = solver.run()
    np.testing.assert_allclose(tiled.image, whole.image, atol=5e-4)  # each step moves pixels by about 0.01
    np.testing.assert_allclose(tiled.losses, whole.losses, rtol=1e-5)


def test_aligned_images_follow_tiles_and_rolls():
    target = img(36, 36, seed=5)
    obj = Objective(lambda f, c: tf.reduce_sum(tf.square(c.image - c.aligned["target"])), "match")
    sol = solve(Problem(obj, init=img(36, 36), steps=60, optimizer="adam", lr=0.05, tile=16,
                        aligned={"target": target}), None)
    assert np.abs(sol.image - target).mean() < 0.05  # would fail if crops of the target were misaligned


def test_lbfgs_respects_bounds_and_evaluation_budget():
    obj = Objective(lambda f, c: tf.reduce_sum(tf.square(c.image - 1.5)), "push above 1")
    sol = solve(Problem(obj, init=img(), steps=12, optimizer="lbfgs"), None)
    assert sol.evaluations <= 12 and sol.image.max() <= 1.0
    assert sol.losses[-1] < sol.losses[0]
    assert sol.image.mean() > img().mean() + 0.2  # moved toward the bound it is pushed against


def test_levels_quantise_the_output():
    sol = solve(Problem(channel("conv", 0), init=img(), maximize=True, steps=3, lr=0.05, levels=4), tiny)
    assert len(np.unique(np.round(sol.image * 3, 5))) <= 4 and np.allclose(sol.image * 3, np.round(sol.image * 3))


def test_octave_sizes_and_detail_reinjection():
    assert octave_sizes((100, 200), 3, 2.0) == [(25, 50), (50, 100), (100, 200)]
    assert octave_sizes((100, 200), 3, 2.0, min_size=40) == [(50, 100), (100, 200)]
    assert octave_sizes((10, 10), 1, 1.4) == [(10, 10)]
    with pytest.raises(ParameterError):
        octave_sizes((10, 10), 0, 1.4)
    original = tf.constant(img(32, 32)[None])
    coarse = resize(resize(original, (16, 16)), (32, 32))  # what the previous octave could hold
    np.testing.assert_allclose(reinject_detail(coarse, lambda: original, (16, 16), (32, 32)).numpy(),
                               original.numpy(), atol=1e-5)


def test_tiles_cover_the_image_with_at_most_two_shapes():
    spans = tile_spans(1000, 300)
    assert spans[0][0] == 0 and spans[-1][1] == 1000 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert {e - s for s, e in spans} <= {250}
    boxes = tiles((100, 70), 32)
    assert sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) == 100 * 70
    # never a span below the network's minimum input: 48 px in 40 px tiles with a 32 px minimum is one span
    assert tile_spans(48, 40, min_span=32) == [(0, 48)]
    assert min(e - s for s, e in tile_spans(1000, 40, min_span=32)) >= 32


def test_problem_validation():
    for bad in (dict(steps=-1), dict(optimizer="rmsprop"), dict(normalize="max"), dict(levels=1),
                dict(tile=-2), dict(clip="huge")):
        with pytest.raises(ParameterError):
            Problem(layer_mean("conv"), init=img(), **bad).validate()
    with pytest.raises(ParameterError, match="minimum of 32"):
        Solver(Problem(layer_mean("conv"), init=img(16, 16)), tiny, min_size=32)


def test_an_image_below_the_model_minimum_names_the_short_side_and_no_octaves_that_would_not_help():
    with pytest.raises(ParameterError) as err:  # was "...minimum of 32 px; use a larger size or fewer octaves"
        Solver(Problem(layer_mean("conv"), init=img(24, 40), octaves=3, octave_scale=1.4), tiny, min_size=32)
    assert str(err.value) == ("image size 40x24 is below the model's minimum of 32 px on each side (its height "
                              "is 24 px); use a larger size (e.g. --size 64)")
    with pytest.raises(ParameterError, match=r"coarse stage of image size 20x40 .*\(its width is 20 px\); use a "
                                             r"larger size or fewer stages"):
        Solver(Problem(layer_mean("conv"), init=img(80, 40), sizes=[(40, 20), (80, 40)]), tiny, min_size=32)


@pytest.mark.parametrize("reinject", [True, False])
def test_banded_octave_preparation_equals_the_general_path(monkeypatch, reinject):
    # a tiled DeepDream-like problem (SGD, normalised gradient, 8-bit input) prepares each octave band by band
    # from the 8-bit original and the previous octave; with no steps the result is that preparation alone
    monkeypatch.setattr(tiling, "_BAND_ROWS", 7)  # many bands, each with a halo, on a small image
    eight = (img(67, 90, seed=3) * 255).astype(np.uint8)
    problem = Problem(channel("conv", 1), init=eight, maximize=True, steps=0, octaves=3, octave_scale=1.4,
                      reinject_detail=reinject, optimizer="sgd", lr=0.05, normalize="mean", tile=16)
    solver = Solver(problem, tiny)
    assert all(solver.lean(size) for size in solver.sizes)
    banded = solver.run().image

    original = tf.constant(eight[None].astype(np.float32) / 255.0)
    sizes = solver.sizes
    x = tf.clip_by_value(resize(original, sizes[0]), 0.0, 1.0)
    for prev, size in zip(sizes, sizes[1:]):
        x = resize(x, size)
        if reinject:
            x = x - resize(resize(original, prev), size) + resize(original, size)
        x = tf.clip_by_value(x, 0.0, 1.0)
    general = x[0].numpy()
    assert banded.shape == general.shape == (67, 90, 3)
    np.testing.assert_allclose(banded, general, atol=1e-5)
