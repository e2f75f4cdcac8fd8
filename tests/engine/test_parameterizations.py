"""lucid's image parameterisations: exact inverse, range, spectrum, and the solver's use of them."""

import numpy as np
import pytest
import tensorflow as tf

from gradfx.engine.errors import ParameterError
from gradfx.engine.objectives import channel
from gradfx.engine.optimise.parameterizations import (
    PARAMETERIZATIONS,
    Lucid,
    make_parameterization,
    rfft2d_freqs,
)
from gradfx.engine.optimise.solver import Problem, solve

LUCID = ("fft", "decorrelated", "fft+decorrelated")


@pytest.mark.parametrize("name", LUCID)
@pytest.mark.parametrize("hw", [(32, 32), (31, 45)])
def test_from_an_image_is_the_exact_inverse(name, hw):
    p = make_parameterization(name)
    assert p.name == name and not p.pixel_space
    image = tf.random.stateless_uniform((2, *hw, 3), seed=[1, 2], minval=0.02, maxval=0.98)
    back = p.to_image(p.variables(image, (2, *hw), 0))
    np.testing.assert_allclose(back.numpy(), image.numpy(), atol=2e-5)


@pytest.mark.parametrize("name", LUCID)
def test_noise_start_is_near_grey_and_images_stay_in_range(name):
    p = make_parameterization(name)
    v = p.variables(None, (1, 24, 24), seed=5)
    start = p.to_image(v).numpy()
    assert start.shape == (1, 24, 24, 3) and abs(start.mean() - 0.5) < 0.02 and start.std() < 0.02
    v[0].assign(v[0] * 1e4)
    big = p.to_image(v).numpy()
    assert big.min() >= 0.0 and big.max() <= 1.0
    same = make_parameterization(name)
    np.testing.assert_array_equal(same.to_image(same.variables(None, (1, 24, 24), seed=5)).numpy(), start)


def test_fft_spectrum_scale_favours_low_frequencies():
    freqs = rfft2d_freqs(8, 8)
    assert freqs.shape == (8, 5) and freqs[0, 0] == 0 and freqs[4, 4] == pytest.approx(np.sqrt(0.5))
    p = Lucid(fft=True, decorrelate=False)
    v = p.variables(None, (1, 16, 16), 0)
    rng = np.random.default_rng(0)
    v[0].assign(rng.normal(size=v[0].shape).astype(np.float32))
    logit = np.log(p.to_image(v).numpy()[0] / (1 - p.to_image(v).numpy()[0]))
    power = np.abs(np.fft.rfft2(logit, axes=(0, 1))) ** 2
    f = rfft2d_freqs(16, 16)
    assert power[(f > 0) & (f < 0.15)].mean() > 10 * power[f > 0.35].mean()


def test_registry_and_errors():
    assert set(LUCID) <= set(PARAMETERIZATIONS)
    with pytest.raises(ParameterError, match="unknown"):
        make_parameterization("wavelet")
    with pytest.raises(ParameterError, match="fft and/or decorrelate"):
        Lucid(fft=False, decorrelate=False)


def _tiny(images):
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))
    return {"conv": tf.nn.relu(tf.nn.conv2d(images * 2.0 - 1.0, kernel, 1, "SAME"))}


@pytest.mark.parametrize("name", LUCID)
def test_solver_optimises_lucid_params_across_octaves_but_will_not_tile_them(name):
    sol = solve(Problem(channel("conv", 1), size=(24, 24), maximize=True, steps=10, lr=0.05, param=name,
                        octaves=2, octave_scale=1.5), _tiny)
    assert sol.losses[-1] > 3 * sol.losses[0] and sol.image.shape == (24, 24, 3)
    with pytest.raises(ParameterError, match="tile needs the pixel"):
        solve(Problem(channel("conv", 1), size=(24, 24), steps=1, param=name, tile=16), _tiny)
