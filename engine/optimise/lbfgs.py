"""Bounded L-BFGS for the solver: SciPy's L-BFGS-B driven by TensorFlow gradients, one stage at a time
(style transfer's ``optimizer = "lbfgs"``). The solver decides when it applies and gives it an
:class:`LbfgsStage`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from ..models.tf import tf
from ..progress import CancelToken
from . import tiling


@dataclass(frozen=True)
class LbfgsStage:
    """What one L-BFGS stage needs from the solver, which builds one per stage."""

    loss: tiling.Loss
    stage: int  #: the stage's index, for messages
    steps: int  #: the budget of objective evaluations
    maximize: bool
    seed: tf.Tensor  #: the seed every evaluation uses (random transforms stay fixed within a stage)
    cancel: CancelToken
    emit: Callable[[int, float], None]  #: (evaluations so far, loss) after each one: progress, snapshots
    count_trace: Callable[[], None]  #: called each time a step function is traced
    tiles: tiling.Tiling | None = None  #: set when the stage is larger than the tile: gradients tile by tile


def run_lbfgs(stage: LbfgsStage, var: tf.Variable, aligned: dict, losses: list[float],
              step_seconds: list[float]) -> tuple[str, str, int]:
    """Bounded L-BFGS (SciPy's L-BFGS-B) driven by TensorFlow gradients on the pixel image ``var``; the
    stage's ``steps`` bound the number of objective evaluations, so its cost compares one to one with
    first-order steps. Appends each evaluation's loss and seconds; returns (status, message, evaluations)."""
    shape = tuple(var.shape)
    sign = -1.0 if stage.maximize else 1.0
    seed = stage.seed
    tiles = stage.tiles
    if tiles is not None:
        tile_grad = tiling.make_tile_grad(tiles)

        def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tiling.tiled_value_and_grad(tiles, tile_grad, x, aligned, seed, roll=False)
    else:

        @tf.function
        def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            stage.count_trace()
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = stage.loss(x, aligned, seed)
            return loss, tape.gradient(loss, x)

    best = {"loss": math.inf, "x": var.numpy().astype(np.float64).ravel()}
    state = {"status": "done", "message": "", "n": 0}

    class _Stop(Exception):
        pass

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if stage.cancel.cancelled:
            state["status"], state["message"] = "cancelled", f"cancelled at evaluation {state['n']}"
            raise _Stop
        if state["n"] >= stage.steps:
            raise _Stop
        t0 = time.perf_counter()
        loss_t, grad = value_and_grad(tf.constant(x.reshape(shape), tf.float32))
        loss = float(loss_t)
        g = grad.numpy().astype(np.float64).ravel() * sign
        step_seconds.append(time.perf_counter() - t0)
        if not (math.isfinite(loss) and np.all(np.isfinite(g))):
            state["status"] = "non-finite"
            state["message"] = (f"the loss or gradient became non-finite at evaluation {state['n'] + 1} of "
                                f"stage {stage.stage + 1}; kept the last finite image")
            raise _Stop
        state["n"] += 1
        losses.append(loss)
        if sign * loss < best["loss"]:
            best["loss"], best["x"] = sign * loss, x.copy()
        var.assign(x.reshape(shape).astype(np.float32))
        stage.emit(state["n"], loss)
        return sign * loss, g

    n = best["x"].size
    if stage.steps > 0:
        try:
            scipy.optimize.minimize(
                fun, best["x"], jac=True, method="L-BFGS-B",
                bounds=scipy.optimize.Bounds(np.zeros(n), np.ones(n)),
                options={"maxiter": stage.steps, "maxfun": stage.steps, "maxcor": 10, "ftol": 0.0,
                         "gtol": 0.0},
            )
        except _Stop:
            pass
    var.assign(best["x"].reshape(shape).astype(np.float32))
    return state["status"], state["message"], state["n"]
