"""Bounded L-BFGS for the solver: SciPy's L-BFGS-B driven by TensorFlow gradients, one stage at a time
(style transfer's ``optimizer = "lbfgs"``). A function of a :class:`~gradfx.engine.solver.Solver`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
import tensorflow as tf

from ..errors import ParameterError
from . import tiling

if TYPE_CHECKING:
    from .solver import Solver


def run_lbfgs(solver: Solver, si: int, variables: list[tf.Variable], aligned: dict, losses: list[float],
               step_seconds: list[float]) -> tuple[str, str, int]:
    """Bounded L-BFGS (SciPy's L-BFGS-B) driven by TensorFlow gradients; ``steps`` bounds the number of
    objective evaluations, so its cost compares one to one with first-order steps."""
    p = solver.p
    if not solver.param.pixel_space:
        raise ParameterError("optimizer 'lbfgs' needs the pixel parameterisation")
    var = variables[0]
    shape = tuple(var.shape)
    sign = -1.0 if p.maximize else 1.0
    seed = solver._step_seed(0)
    if p.tile and max(solver.sizes[si]) > p.tile:
        tile_grad = tiling.make_tile_grad(solver)

        def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tiling.tiled_value_and_grad(solver, tile_grad, x, aligned, seed, roll=False)
    else:

        @tf.function
        def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            solver.traces += 1
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = solver._loss(x, aligned, seed)
            return loss, tape.gradient(loss, x)

    best = {"loss": math.inf, "x": var.numpy().astype(np.float64).ravel()}
    state = {"status": "done", "message": "", "n": 0}

    class _Stop(Exception):
        pass

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if solver.cancel.cancelled:
            state["status"], state["message"] = "cancelled", f"cancelled at evaluation {state['n']}"
            raise _Stop
        if state["n"] >= p.steps:
            raise _Stop
        t0 = time.perf_counter()
        loss_t, grad = value_and_grad(tf.constant(x.reshape(shape), tf.float32))
        loss = float(loss_t)
        g = grad.numpy().astype(np.float64).ravel() * sign
        step_seconds.append(time.perf_counter() - t0)
        if not (math.isfinite(loss) and np.all(np.isfinite(g))):
            state["status"] = "non-finite"
            state["message"] = (f"the loss or gradient became non-finite at evaluation {state['n'] + 1} of "
                                f"stage {si + 1}; kept the last finite image")
            raise _Stop
        state["n"] += 1
        losses.append(loss)
        if sign * loss < best["loss"]:
            best["loss"], best["x"] = sign * loss, x.copy()
        var.assign(x.reshape(shape).astype(np.float32))
        solver._emit(si, state["n"], loss, variables, len(losses))
        return sign * loss, g

    n = best["x"].size
    if p.steps > 0:
        try:
            scipy.optimize.minimize(
                fun, best["x"], jac=True, method="L-BFGS-B",
                bounds=scipy.optimize.Bounds(np.zeros(n), np.ones(n)),
                options={"maxiter": p.steps, "maxfun": p.steps, "maxcor": 10, "ftol": 0.0, "gtol": 0.0},
            )
        except _Stop:
            pass
    var.assign(best["x"].reshape(shape).astype(np.float32))
    return state["status"], state["message"], state["n"]
