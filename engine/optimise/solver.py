"""The one optimisation loop every effect shares.

An effect describes a :class:`Problem`; :func:`solve` runs it: parameterisation -> transforms ->
straight-through quantisation -> the backbone (its preprocessing inside the extractor) -> objective ->
gradient -> normalisation and clipping -> optimiser update -> projection, wrapped in a schedule of stages
(octaves or explicit sizes, with optional lost-detail re-injection) and optionally in tiles under a random
roll, so memory stays bounded and no seam builds up.

Progress, cancellation, step timing, determinism (stateless random ops seeded by ``(seed, step)``) and
non-finite detection live here once, not in each effect.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..models.tf import tf
from ..modelspecs import check_min_size, larger_size
from ..objectives import BindContext, Objective, StepContext
from ..params import PRECISIONS
from ..progress import CancelToken, ProgressCallback, ProgressEvent
from . import gradients, lbfgs, schedule, tiling
from .optimizers import OPTIMIZERS, make_optimizer
from .parameterizations import Parameterization, Pixel, make_parameterization

#: A differentiable image transform: (images (B, H, W, 3), seed int tensor of shape [2]) -> images.
Transform = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


@dataclass
class Problem:
    """Everything the engine needs to optimise an image. Effects build one; :func:`solve` solves it.

    Images are float arrays in [0, 1], (H, W, 3) or (B, H, W, 3); ``init`` may also be uint8 (``k / 255``).
    ``size`` is the final canvas (height, width); it defaults to ``init``'s. Stages run from coarse to fine: ``sizes`` when given, else ``octaves``
    sizes ``octave_scale`` apart. ``steps`` is per stage. ``maximize`` flips the sign: DeepDream and feature
    visualisation ascend, style transfer descends. ``aligned`` images follow the canvas through every resize,
    tile crop and roll, and reach the objective in ``StepContext.aligned``.
    """

    objective: Objective
    init: np.ndarray | None = None
    size: tuple[int, int] | None = None
    batch: int = 1
    maximize: bool = False
    model: str | None = None
    pooling: str = "max"
    include_top: bool = False
    param: str | Parameterization = "pixel"
    transforms: Sequence[Transform] = ()
    steps: int = 100
    octaves: int = 1
    octave_scale: float = 1.4
    sizes: Sequence[tuple[int, int]] | None = None
    reinject_detail: bool = False
    optimizer: str = "adam"
    lr: float = 0.01
    optimizer_options: Mapping[str, float] = field(default_factory=dict)
    normalize: str | None = None
    clip: str | None = None
    clip_value: float | None = None
    levels: int | None = None
    tile: int = 0
    roll: bool | None = None
    max_loss: float | None = None
    aligned: Mapping[str, np.ndarray] = field(default_factory=dict)
    label: str = ""
    #: keep a copy of the image every this many steps (0: none), in ``Solution.snapshots``
    snapshot_every: int = 0
    #: also keep a copy after each of these step counts (over all stages), e.g. feature-vis ``thresholds``
    snapshot_steps: Sequence[int] = ()
    #: the backbone's compute dtype: ``float32``, or ``bfloat16`` (about 1.6x faster per step on CPUs with
    #: AVX512-BF16; image, objective and optimiser stay float32). See ``bench/RESULTS.md``.
    precision: str = "float32"

    def validate(self) -> None:
        if self.steps < 0:
            raise ParameterError(f"steps {self.steps!r} must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"optimizer {self.optimizer!r} is unknown; use one of {', '.join(OPTIMIZERS)}")
        if self.normalize not in (None, *gradients.NORMALIZE_MODES):
            raise ParameterError(
                f"normalize {self.normalize!r} is unknown; use one of {', '.join(gradients.NORMALIZE_MODES)}"
            )
        if self.clip not in (None, *gradients.CLIP_MODES):
            raise ParameterError(f"clip {self.clip!r} is unknown; use one of {', '.join(gradients.CLIP_MODES)}")
        if self.levels is not None and self.levels < 2:
            raise ParameterError(f"levels {self.levels!r} must be >= 2 (or unset)")
        if self.tile < 0:
            raise ParameterError(f"tile {self.tile!r} must be >= 0 (0 = whole image)")
        if self.init is None and self.size is None:
            raise ParameterError("a problem needs an init image or a size")
        if self.precision not in PRECISIONS:
            raise ParameterError(f"precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}")


@dataclass
class Solution:
    """The result of :func:`solve`. ``status`` is ``done``, ``cancelled``, ``max_loss`` or ``non-finite``."""

    image: np.ndarray
    losses: list[float]
    step_seconds: list[float]
    sizes: list[tuple[int, int]]
    status: str = "done"
    message: str = ""
    evaluations: int = 0
    snapshots: list[np.ndarray] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def partial(self) -> bool:
        return self.status in ("cancelled", "non-finite")




class Solver:
    """Runs one :class:`Problem`. Use :func:`solve`; the class exists so tests can look inside."""

    def __init__(
        self,
        problem: Problem,
        extractor: Callable[[tf.Tensor], Mapping[str, tf.Tensor]] | None,
        *,
        seed: int = 0,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        min_size: int = 1,
        step_offset: int = 0,
        total_steps: int | None = None,
        stage_prefix: str = "",
        checkpoint: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_every: int = 0,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        problem.validate()
        self.min_size = int(min_size)
        self.checkpoint = checkpoint
        self.checkpoint_every = int(checkpoint_every)
        self.resume = resume
        self.p = problem
        if extractor is not None and problem.precision != getattr(extractor, "precision", "float32"):
            if not hasattr(extractor, "with_precision"):
                raise ParameterError(f"precision {problem.precision!r} needs a gradfx Extractor (with_precision)")
            extractor = extractor.with_precision(problem.precision)
        self.extractor = extractor
        self.seed = int(seed)
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.param = make_parameterization(problem.param)
        self.traces = 0  # how many times a step function was traced (tests check it is once per shape)
        self.stage_prefix = stage_prefix
        final = problem.size or tuple(np.shape(problem.init)[-3:-1])
        self.final_size: tuple[int, int] = (int(final[0]), int(final[1]))
        if problem.sizes:
            self.sizes = [tuple(map(int, s)) for s in problem.sizes]
        else:
            self.sizes = schedule.octave_sizes(self.final_size, problem.octaves, problem.octave_scale, min_size)
        model = getattr(getattr(extractor, "spec", None), "name", "the model")  # a gradfx Extractor's model
        for size in self.sizes:  # octave_sizes drops coarse octaves that are too small: only `sizes` can hold one
            coarse = tuple(size) != self.final_size
            check_min_size(min_size, model=model, size=size, what="a coarse stage of image size" if coarse else
                           "image size",
                           fix="use a larger size or fewer stages" if coarse else larger_size(min_size, size))
        check_min_size(min_size, model=model, param="tile", value=problem.tile or 0, zero="the whole image")
        if problem.tile and not self.param.pixel_space:
            raise ParameterError(f"tile needs the pixel parameterisation, not {self.param.name!r}")
        # A tiled update runs band by band in DeepDream's case, SGD on a normalised, unclipped gradient of a
        # pixel image: there the tile-gradient buffer is bfloat16 (only the gradient's direction matters once
        # normalised) and no full-size temporary is made (tiling.make_band_apply).
        self.banded = (type(self.param) is Pixel and problem.optimizer == "sgd"
                       and problem.normalize not in (None, "none") and problem.clip in (None, "none")
                       and problem.batch == 1)
        self._tile_grads = tiling.GradBuffer()
        self.step_offset = step_offset
        self.snapshots: list[np.ndarray] = []
        self.total_steps = total_steps if total_steps is not None else problem.steps * len(self.sizes)
        self._started = time.perf_counter()
        self._warmup: tuple[float, int] | None = None  # (elapsed, total_step) of the first event

    # --- the step functions ----------------------------------------------------------------------------------
    def _loss(self, image: tf.Tensor, aligned: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
        x = image
        for transform in self.p.transforms:
            x = transform(x, seed)
        x = gradients.straight_through(x, self.p.levels)
        features = self.extractor(x) if self.extractor is not None else {}
        loss = self.p.objective(features, StepContext(image=x, aligned=aligned))
        return tf.cast(loss, tf.float32)

    def _update(self, grads: list[tf.Tensor], variables: list[tf.Variable], optimizer: Any) -> None:
        p = self.p
        grads = [gradients.normalize(g, p.normalize) for g in grads]
        grads = gradients.clip(grads, p.clip, p.clip_value)
        if p.maximize:
            grads = [-g for g in grads]
        optimizer.apply(grads, variables)
        self.param.project(variables)

    def _make_whole_step(self, variables: list[tf.Variable], optimizer: Any, aligned: dict) -> Callable:
        @tf.function
        def step(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            self._count_trace()
            with tf.GradientTape() as tape:
                loss = self._loss(self.param.to_image(variables), aligned, seed)
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            finite = tf.logical_and(finite, tf.math.is_finite(loss))
            if finite:
                self._update(grads, variables, optimizer)
            return loss, finite

        return step

    def _make_apply(self, variables: list[tf.Variable], optimizer: Any) -> Callable:
        @tf.function
        def apply(grad: tf.Tensor) -> tf.Tensor:
            finite = tf.reduce_all(tf.math.is_finite(grad))
            if finite:
                self._update([grad], variables, optimizer)
            return finite

        return apply

    # --- the large-image and L-BFGS paths: when they apply, and what they are given ------------------------
    def tiled(self, size: tuple[int, int]) -> bool:
        """Whether a stage of ``size`` is computed tile by tile (it is larger than the tile)."""
        return bool(self.p.tile) and max(size) > self.p.tile

    def lean(self, size: tuple[int, int]) -> bool:
        """Whether a stage of ``size`` is prepared band by band (:func:`tiling.lean_stage`): tiled and banded,
        from an init image."""
        return self.tiled(size) and self.banded and self.p.init is not None

    def _count_trace(self) -> None:
        self.traces += 1

    def _tiling(self, size: tuple[int, int]) -> tiling.Tiling | None:
        """What the tiled path needs for a stage of ``size``; None when the stage is not tiled."""
        if not self.tiled(size):
            return None
        return tiling.Tiling(loss=self._loss, tile=self.p.tile, min_size=self.min_size, banded=self.banded,
                             count_trace=self._count_trace, grads=self._tile_grads)

    def _run_lbfgs(self, si: int, variables: list[tf.Variable], aligned: dict, losses: list[float],
                   step_seconds: list[float]) -> tuple[str, str, int]:
        if not self.param.pixel_space:
            raise ParameterError("optimizer 'lbfgs' needs the pixel parameterisation")
        stage = lbfgs.LbfgsStage(
            loss=self._loss, stage=si, steps=self.p.steps, maximize=self.p.maximize, seed=self._step_seed(0),
            cancel=self.cancel, emit=lambda n, loss: self._emit(si, n, loss, variables, len(losses)),
            count_trace=self._count_trace, tiles=self._tiling(self.sizes[si]))
        return lbfgs.run_lbfgs(stage, variables[0], aligned, losses, step_seconds)

    # --- the loop --------------------------------------------------------------------------------------------
    def _emit(self, stage_index: int, step: int, loss: float, variables: list[tf.Variable], done: int,
              message: str = "") -> None:
        if (self.p.snapshot_every and done % self.p.snapshot_every == 0) or done in self.p.snapshot_steps:
            snap = self.param.to_image(variables).numpy()
            self.snapshots.append(snap[0] if snap.shape[0] == 1 else snap)
        if self.progress is None:
            return
        size = self.sizes[stage_index]
        label = self.p.label or "stage"
        stage = f"{self.stage_prefix}{label} {stage_index + 1}/{len(self.sizes)} ({size[1]}x{size[0]})"
        param = self.param

        def preview() -> np.ndarray:
            img = param.to_image(variables).numpy()
            return img[0] if img.shape[0] == 1 else img

        elapsed, total_step = time.perf_counter() - self._started, self.step_offset + done
        if self._warmup is None:  # the first step traced the model: the ETA counts from after it
            self._warmup = (elapsed, total_step)
        self.progress(
            ProgressEvent(
                stage=stage,
                stage_index=stage_index,
                stage_count=len(self.sizes),
                step=step,
                steps=self.p.steps,
                loss=loss,
                elapsed=elapsed,
                total_step=total_step,
                total_steps=self.total_steps,
                message=message,
                warmup_elapsed=self._warmup[0],
                warmup_step=self._warmup[1],
                _preview=preview,
            )
        )

    def _step_seed(self, global_step: int) -> tf.Tensor:
        return tf.constant([self.seed, global_step], tf.int64)

    def run(self) -> Solution:
        p = self.p
        resume = self.resume
        losses: list[float] = list(resume["losses"]) if resume else []
        step_seconds: list[float] = list(resume["step_seconds"]) if resume else []
        first_stage = int(resume["stage"]) if resume else 0
        status, message = "done", ""
        # The full-size original is needed only when a stage starts: convert it then rather than hold a copy
        # for the whole run (at 4096 px every full-size copy is 200 MB).
        def original() -> tf.Tensor:
            return schedule.batched(p.init, p.batch)

        image: tf.Tensor | None = None
        variables: list[tf.Variable] = []
        evaluations = 0
        for si, size in enumerate(self.sizes):
            if si < first_stage:
                continue
            resuming = resume is not None and si == first_stage
            if resuming:
                variables = []  # made below, then given the saved values
            elif self.lean(size):
                variables = [tiling.lean_stage(p.init, variables[0] if variables else None, size,
                                               self.sizes[si - 1], p.reinject_detail)]
            elif si == 0:
                image = None if p.init is None else schedule.resize(original(), size)
            else:
                image = schedule.resize(self.param.to_image(variables), size)
                variables = []  # free the coarse stage's image before the full-size detail is computed
                if p.reinject_detail and p.init is not None:
                    image = schedule.reinject_detail(image, original, self.sizes[si - 1], size)
                image = tf.clip_by_value(image, 0.0, 1.0)
            if image is not None or not variables:
                variables = self.param.variables(image, (p.batch, *size), self.seed)
            image = None  # the variables hold the stage's image; a second reference would keep a copy alive
            if resuming:
                for var, saved in zip(variables, resume["variables"], strict=True):
                    var.assign(saved)
            aligned = {k: schedule.resize(schedule.batched(v, 1), size) for k, v in p.aligned.items()}
            if self.extractor is not None:
                tile = p.tile if p.tile and max(size) > p.tile else 0
                p.objective.bind(BindContext(size=size, features=self.extractor, stage=si, aligned=aligned,
                                             tile=tile, min_size=self.min_size))
            if p.optimizer == "lbfgs":
                status, message, n = self._run_lbfgs(si, variables, aligned, losses, step_seconds)
                evaluations += n
            else:
                status, message = self._run_first_order(si, variables, aligned, losses, step_seconds,
                                                         resume if resuming else None)
                evaluations = len(losses)
            self._tile_grads.free()  # a stage's tile gradient buffer is not needed after it
            if self.lean(size):  # its traced step functions hold it and the image in reference cycles: free
                gc.collect()      # them now, so the next stage's canvases can reuse their memory
            if status in ("cancelled", "non-finite"):
                break
        final = self.param.to_image(variables)
        if tuple(final.shape[1:3]) != self.final_size:  # stopped in a coarse stage: deliver the full size
            final = tf.clip_by_value(schedule.resize(final, self.final_size), 0.0, 1.0)
        if p.levels:
            final = gradients.quantize(final, p.levels)
        # a banded (large, tiled) canvas is handed over without a second copy (a read-only array)
        result = np.asarray(final) if self.lean(self.final_size) else final.numpy()
        del final
        if p.batch == 1:
            result = result[0]
        return Solution(result, losses, step_seconds, list(self.sizes), status, message, evaluations,
                        self.snapshots)

    def _run_first_order(self, si: int, variables: list[tf.Variable], aligned: dict, losses: list[float],
                         step_seconds: list[float], resume: Mapping[str, Any] | None = None) -> tuple[str, str]:
        p = self.p
        optimizer = make_optimizer(p.optimizer, p.lr, **p.optimizer_options)
        optimizer.build(variables)
        first = 0
        if resume is not None:
            optimizer.load_state(resume["optimizer"])
            first = int(resume["step"])
        tiles = self._tiling(self.sizes[si])
        if tiles is not None:
            tile_grad = tiling.make_tile_grad(tiles)
            apply = (tiling.make_band_apply(variables[0], lr=p.lr, normalize=p.normalize, maximize=p.maximize)
                     if tiles.banded else self._make_apply(variables, optimizer))
        else:
            step = self._make_whole_step(variables, optimizer, aligned)
        status, message = "done", ""
        for i in range(first, p.steps):
            if self.cancel.cancelled:
                return "cancelled", f"cancelled at step {i} of stage {si + 1}"
            t0 = time.perf_counter()
            seed = self._step_seed(self.step_offset + len(losses))
            if tiles is not None:
                loss_t, grad = tiling.tiled_value_and_grad(tiles, tile_grad, variables[0], aligned, seed,
                                                          p.roll is not False)
                finite = bool(apply(grad)) and math.isfinite(float(loss_t))
            else:
                loss_t, finite_t = step(seed)
                finite = bool(finite_t)
            loss = float(loss_t)
            step_seconds.append(time.perf_counter() - t0)
            if not finite:
                return "non-finite", (
                    f"the loss or gradient became non-finite at step {i + 1} of stage {si + 1}; "
                    f"kept the last finite image (try a smaller learning rate or step size)"
                )
            losses.append(loss)
            self._emit(si, i + 1, loss, variables, len(losses))
            if self.checkpoint is not None and self.checkpoint_every and (i + 1) % self.checkpoint_every == 0:
                self.checkpoint({"stage": si, "step": i + 1, "variables": [v.numpy() for v in variables],
                                 "optimizer": optimizer.state(), "losses": list(losses),
                                 "step_seconds": list(step_seconds)})
            if p.max_loss is not None and p.maximize and loss > p.max_loss:
                status, message = "max_loss", f"objective passed max_loss {p.max_loss:g} at step {i + 1}"
                break
        return status, message

def smaller_tile(problem: Problem, min_size: int) -> int | None:
    """The next tile size to try after running out of memory: half the image's longest side when untiled,
    else half the tile; None once that would go below the smallest useful tile (twice the model's minimum
    input, at least 64 px) or the parameterisation cannot be tiled."""
    if not make_parameterization(problem.param).pixel_space:
        return None
    longest = max(problem.size or tuple(np.shape(problem.init)[-3:-1]))
    current = problem.tile if problem.tile and problem.tile < longest else longest
    nxt = current // 2
    return nxt if nxt >= max(2 * min_size, 64) else None


def solve(
    problem: Problem,
    extractor: Callable[[tf.Tensor], Mapping[str, tf.Tensor]] | None,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    min_size: int = 1,
) -> Solution:
    """Solve ``problem`` with ``extractor`` (images in [0, 1] -> {layer: activations}); see :class:`Problem`."""
    return Solver(problem, extractor, seed=seed, progress=progress, cancel=cancel, min_size=min_size).run()
