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
import scipy.optimize
import tensorflow as tf

from . import gradients, schedule
from .errors import ParameterError
from .modelspecs import check_min_size
from .objectives import BindContext, Objective, StepContext
from .optimizers import OPTIMIZERS, make_optimizer
from .parameterizations import Parameterization, Pixel, make_parameterization
from .params import PRECISIONS
from .progress import CancelToken, ProgressCallback, ProgressEvent

#: rows per band when a tiled canvas is updated or prepared band by band (a 4096 px wide band: 6 MB)
_BAND_ROWS = 128

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


ExtractorFactory = Callable[[Problem], Any]


def _batched(image: np.ndarray | tf.Tensor, batch: int) -> tf.Tensor:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:  # an 8-bit original: the same floats as k / 255
        t = _from_8bit(tf.convert_to_tensor(image))
    else:
        t = tf.convert_to_tensor(image, tf.float32)
    if t.shape.rank == 3:
        t = t[None]
    if t.shape[0] != batch:
        if t.shape[0] != 1:
            raise ParameterError(f"init has a batch of {t.shape[0]} images but the problem asks for {batch}")
        t = tf.repeat(t, batch, axis=0)
    return t


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
        for size in self.sizes:  # octave_sizes drops coarse octaves that are too small: only `sizes` can hold one
            coarse = tuple(size) != self.final_size
            check_min_size(min_size, size=size, what="a coarse stage of image size" if coarse else "image size",
                           fix="use a larger size or fewer stages" if coarse else "use a larger size")
        check_min_size(min_size, param="tile", value=problem.tile or 0, zero="the whole image")
        if problem.tile and not self.param.pixel_space:
            raise ParameterError(f"tile needs the pixel parameterisation, not {self.param.name!r}")
        self.step_offset = step_offset
        self.snapshots: list[np.ndarray] = []
        self.total_steps = total_steps if total_steps is not None else problem.steps * len(self.sizes)
        self._started = time.perf_counter()

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
            self.traces += 1
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

    def _make_tile_grad(self) -> Callable:
        # Tiles come in up to four shapes per stage; relaxed shapes keep that to two traces (each trace of a
        # large backbone costs tens of MB).
        @tf.function(reduce_retracing=True)
        def tile_grad(crop: tf.Tensor, aligned: dict, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            self.traces += 1
            with tf.GradientTape() as tape:
                tape.watch(crop)
                loss = self._loss(crop, aligned, seed)
            grad = tape.gradient(loss, crop)
            return loss, tf.zeros_like(crop) if grad is None else grad

        return tile_grad

    def _banded(self) -> bool:
        """Whether the tiled update runs band by band (see :meth:`_make_band_apply`): DeepDream's case, SGD on a
        normalised, unclipped gradient of a pixel image. There the tile-gradient buffer is bfloat16 (only the
        gradient's direction matters once normalised) and no full-size temporary is made."""
        p = self.p
        return (type(self.param) is Pixel and p.optimizer == "sgd" and p.normalize not in (None, "none")
                and p.clip in (None, "none") and p.batch == 1)

    def _make_band_apply(self, var: tf.Variable) -> Callable:
        """``apply(buffer)`` for :meth:`_banded` problems: the same update as ``_update`` (normalise, step,
        clip to [0, 1]), with the normalisation statistic reduced band by band and the step slice-assigned band
        by band, so no temporary is larger than a band (the canvas may be 4096 px: 200 MB a float32 copy)."""
        p = self.p
        bands = schedule.tile_spans(int(var.shape[1]), _BAND_ROWS)
        count = float(np.prod(var.shape))
        sign = -1.0 if p.maximize else 1.0

        def rows(buf: tf.Variable, y0: int, y1: int, after: Any) -> tf.Tensor:
            # a gather reads only these rows; a sliced read would copy the whole buffer (tile writes leave it
            # in TensorFlow's copy-on-read mode). Reading ``after`` the previous band's work keeps one band at a
            # time: unordered, the executor reads every band at once (a full-size float32 copy, 200 MB at 4096 px)
            with tf.control_dependencies([after]):
                return tf.cast(buf.sparse_read(tf.range(y0, y1)), tf.float32)[None]

        @tf.function
        def apply(buf: tf.Variable) -> tf.Tensor:
            scale, finite = gradients.banded_divisor(lambda y0, y1, after: rows(buf, y0, y1, after), bands, count,
                                                     p.normalize)
            if finite:
                done = scale
                for y0, y1 in bands:  # read by a gather, written in place: no full-size temporary
                    done = _write(var, (0, y0, 0, 0), tf.clip_by_value(
                        _rows(var, y0, y1) - p.lr * (sign * (rows(buf, y0, y1, done) / scale)), 0.0, 1.0))
            return finite

        return apply

    def _make_apply(self, variables: list[tf.Variable], optimizer: Any) -> Callable:
        @tf.function
        def apply(grad: tf.Tensor) -> tf.Tensor:
            finite = tf.reduce_all(tf.math.is_finite(grad))
            if finite:
                self._update([grad], variables, optimizer)
            return finite

        return apply

    def _tiled_value_and_grad(self, tile_grad: Callable, image: tf.Tensor, aligned: dict, seed: tf.Tensor,
                              roll: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """Objective and gradient summed over tiles of ``image``, under a random roll when ``roll``.

        Equivalent to tiling ``tf.roll(image, (dy, dx))`` and rolling the gradient back, but without any
        full-size temporary: each tile is gathered from ``image`` with wrapped indices and its gradient is
        written in place into one gradient buffer per canvas size, so memory is one tile's activations plus
        that buffer whatever the image size.
        """
        h, w = int(image.shape[1]), int(image.shape[2])
        if roll:
            shift = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=2**30, dtype=tf.int32)
            dy, dx = int(shift[0]) % h, int(shift[1]) % w
        else:
            dy = dx = 0
        buf = self._grad_buffer(image)
        banded = buf.shape.rank == 3
        total = tf.constant(0.0)
        for y0, y1 in schedule.tile_spans(h, self.p.tile, self.min_size):
            ys = _wrapped(y0, y1, dy, h)
            if banded:  # the tile row's band of the rolled image, read by one gather (see _make_band_apply)
                band = _rows(image, y0 - dy, y1 - dy)
            for x0, x1 in schedule.tile_spans(w, self.p.tile, self.min_size):
                xs = _wrapped(x0, x1, dx, w)
                crops = {k: _gather(v, ys, xs) for k, v in aligned.items()}
                crop = _gather(band, [(0, y1 - y0, 0, y1 - y0)], xs) if banded else _gather(image, ys, xs)
                loss, grad = tile_grad(crop, crops, seed)
                total += loss
                for t0, t1, i0, _ in ys:
                    for u0, u1, j0, _ in xs:
                        if buf.shape.rank == 3:  # a banded buffer: rows first, one image
                            _write(buf, (i0, j0, 0), tf.cast(grad[0, t0:t1, u0:u1], buf.dtype))
                        else:
                            _write(buf, (0, i0, j0, 0), grad[:, t0:t1, u0:u1])
        return total, buf

    def _grad_buffer(self, image: tf.Tensor) -> tf.Variable:
        buf = getattr(self, "_tile_grad_buffer", None)
        banded = self._banded()
        shape = tuple(image.shape[1:]) if banded else tuple(image.shape)
        if buf is None or tuple(buf.shape) != shape:
            self._tile_grad_buffer = buf = None  # free the old one before allocating
            # banded: bfloat16 rows (H, W, 3), read back a band at a time by the band update
            buf = tf.Variable(tf.zeros(shape, tf.bfloat16 if banded else tf.float32), trainable=False,
                              name="tile_gradient")
            self._tile_grad_buffer = buf
        return buf

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

        self.progress(
            ProgressEvent(
                stage=stage,
                stage_index=stage_index,
                stage_count=len(self.sizes),
                step=step,
                steps=self.p.steps,
                loss=loss,
                elapsed=time.perf_counter() - self._started,
                total_step=self.step_offset + done,
                total_steps=self.total_steps,
                message=message,
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
            return _batched(p.init, p.batch)

        image: tf.Tensor | None = None
        variables: list[tf.Variable] = []
        evaluations = 0
        for si, size in enumerate(self.sizes):
            if si < first_stage:
                continue
            resuming = resume is not None and si == first_stage
            if resuming:
                variables = []  # made below, then given the saved values
            elif self._lean(size):
                variables = [self._lean_stage(variables[0] if variables else None, si)]
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
            aligned = {k: schedule.resize(_batched(v, 1), size) for k, v in p.aligned.items()}
            if self.extractor is not None:
                tile = p.tile if p.tile and max(size) > p.tile else 0
                p.objective.bind(BindContext(size=size, features=self.extractor, stage=si, aligned=aligned,
                                             tile=tile))
            if p.optimizer == "lbfgs":
                status, message, n = self._run_lbfgs(si, variables, aligned, losses, step_seconds)
                evaluations += n
            else:
                status, message = self._run_first_order(si, variables, aligned, losses, step_seconds,
                                                         resume if resuming else None)
                evaluations = len(losses)
            self._tile_grad_buffer = None  # a stage's tile gradient buffer is not needed after it
            if self._lean(size):  # its traced step functions hold it and the image in reference cycles: free
                gc.collect()      # them now, so the next stage's canvases can reuse their memory
            if status in ("cancelled", "non-finite"):
                break
        final = self.param.to_image(variables)
        if tuple(final.shape[1:3]) != self.final_size:  # stopped in a coarse stage: deliver the full size
            final = tf.clip_by_value(schedule.resize(final, self.final_size), 0.0, 1.0)
        if p.levels:
            final = gradients.quantize(final, p.levels)
        # a banded (large, tiled) canvas is handed over without a second copy (a read-only array)
        result = np.asarray(final) if self._lean(self.final_size) else final.numpy()
        del final
        if p.batch == 1:
            result = result[0]
        return Solution(result, losses, step_seconds, list(self.sizes), status, message, evaluations,
                        self.snapshots)

    def _lean(self, size: tuple[int, int]) -> bool:
        """Whether the stage of ``size`` is prepared by :meth:`_lean_stage` (a tiled, banded stage)."""
        return bool(self.p.tile) and max(size) > self.p.tile and self._banded() and self.p.init is not None

    def _lean_stage(self, coarse: tf.Variable | None, si: int) -> tf.Variable:
        """The image variable of stage ``si`` (a tiled, banded stage), written band by band into the variable, so
        no full-size temporary exists beside it (a 4096 px float canvas is 200 MB).

        The first stage's is ``clip(resize(original, size))``; a later stage's is the general path's
        ``clip(resize(x, size) - resize(resize(original, prev), size) + resize(original, size))``, computed as
        ``clip(resize(x - resize(original, prev), size) + resize(original, size))`` (resizing is linear). Every
        term is resized band by band (:func:`schedule.resized_rows`) from rows of ``coarse`` (the previous
        stage's variable ``x``) and of the original (converted from 8 bits a band at a time): equal to the
        general path up to float rounding.
        """
        p, size, prev = self.p, self.sizes[si], self.sizes[si - 1]
        init = p.init if np.ndim(p.init) == 3 else p.init[0]
        src = tuple(init.shape[:2])

        def original(a: int, b: int) -> tf.Tensor:
            return _batched(init[a:b], 1)

        def detail(a: int, b: int) -> tf.Tensor:  # rows of x - resize(original, prev)
            x = _rows(coarse, a, b)
            return x - schedule.resized_rows(original, src, prev, a, b) if p.reinject_detail else x

        var = tf.Variable(tf.zeros((1, *size, 3)), trainable=True, name="image")
        for y0, y1 in schedule.tile_spans(size[0], _BAND_ROWS):
            if coarse is None:
                band = schedule.resized_rows(original, src, size, y0, y1)
            else:
                band = schedule.resized_rows(detail, prev, size, y0, y1)
                if p.reinject_detail:
                    band += schedule.resized_rows(original, src, size, y0, y1)
            _write(var, (0, y0, 0, 0), tf.clip_by_value(band, 0.0, 1.0))
        return var

    def _run_first_order(self, si: int, variables: list[tf.Variable], aligned: dict, losses: list[float],
                         step_seconds: list[float], resume: Mapping[str, Any] | None = None) -> tuple[str, str]:
        p = self.p
        optimizer = make_optimizer(p.optimizer, p.lr, **p.optimizer_options)
        optimizer.build(variables)
        first = 0
        if resume is not None:
            optimizer.load_state(resume["optimizer"])
            first = int(resume["step"])
        tiled = bool(p.tile) and max(self.sizes[si]) > p.tile
        if tiled:
            tile_grad = self._make_tile_grad()
            apply = (self._make_band_apply(variables[0]) if self._banded()
                     else self._make_apply(variables, optimizer))
        else:
            step = self._make_whole_step(variables, optimizer, aligned)
        status, message = "done", ""
        for i in range(first, p.steps):
            if self.cancel.cancelled:
                return "cancelled", f"cancelled at step {i} of stage {si + 1}"
            t0 = time.perf_counter()
            seed = self._step_seed(self.step_offset + len(losses))
            if tiled:
                loss_t, grad = self._tiled_value_and_grad(tile_grad, variables[0], aligned, seed,
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

    def _run_lbfgs(self, si: int, variables: list[tf.Variable], aligned: dict, losses: list[float],
                   step_seconds: list[float]) -> tuple[str, str, int]:
        """Bounded L-BFGS (SciPy's L-BFGS-B) driven by TensorFlow gradients; ``steps`` bounds the number of
        objective evaluations, so its cost compares one to one with first-order steps."""
        p = self.p
        if not self.param.pixel_space:
            raise ParameterError("optimizer 'lbfgs' needs the pixel parameterisation")
        var = variables[0]
        shape = tuple(var.shape)
        sign = -1.0 if p.maximize else 1.0
        seed = self._step_seed(0)
        if p.tile and max(self.sizes[si]) > p.tile:
            tile_grad = self._make_tile_grad()

            def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                return self._tiled_value_and_grad(tile_grad, x, aligned, seed, roll=False)
        else:

            @tf.function
            def value_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                self.traces += 1
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = self._loss(x, aligned, seed)
                return loss, tape.gradient(loss, x)

        best = {"loss": math.inf, "x": var.numpy().astype(np.float64).ravel()}
        state = {"status": "done", "message": "", "n": 0}

        class _Stop(Exception):
            pass

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            if self.cancel.cancelled:
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
            self._emit(si, state["n"], loss, variables, len(losses))
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


@tf.function
def _from_8bit(image: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 ``k / 255``, in one graph so the division reuses the cast's buffer (one full-size copy)."""
    return tf.cast(image, tf.float32) / 255.0


def _rows(var: tf.Variable, y0: int, y1: int) -> tf.Tensor:
    """Rows ``y0:y1`` (modulo H, so a band may wrap around) of a (1, H, W, C) variable, read by a gather: once a
    variable has been written in slices TensorFlow copies all of it on every ordinary read, but a gather
    copies only what it reads."""
    return tf.raw_ops.ResourceGather(resource=var.handle, indices=tf.range(y0, y1)[None] % var.shape[1],
                                     batch_dims=1, dtype=var.dtype)


def _write(var: tf.Variable, begin: tuple[int, ...], value: tf.Tensor) -> Any:
    """``var[begin : begin + value.shape] = value``, in place. ``var[...].assign`` would first read the whole
    variable (a full-size copy once it is in copy-on-read mode, see :func:`_rows`), and that read's reference
    makes the write copy the variable too; the raw op only writes the slice (and returns it, in a graph)."""
    end = [b + n for b, n in zip(begin, value.shape, strict=True)]
    return tf.raw_ops.ResourceStridedSliceAssign(ref=var.handle, begin=begin, end=end, strides=[1] * len(begin),
                                          value=value)


def _wrapped(start: int, end: int, shift: int, n: int) -> list[tuple[int, int, int, int]]:
    """Where positions ``start..end`` of an axis rolled by ``shift`` come from in the unrolled axis of length
    ``n``: contiguous pieces ``(tile_from, tile_to, image_from, image_to)`` (two when the span wraps)."""
    q0, length = (start - shift) % n, end - start
    if q0 + length <= n:
        return [(0, length, q0, q0 + length)]
    first = n - q0
    return [(0, first, q0, n), (first, length, 0, length - first)]


def _gather(t: tf.Tensor, ys: list[tuple[int, int, int, int]], xs: list[tuple[int, int, int, int]]) -> tf.Tensor:
    """The tile of ``t`` (B, H, W, C) described by :func:`_wrapped` pieces, built from tile-sized slices."""
    rows = [tf.concat([t[:, i0:i1, j0:j1] for _, _, j0, j1 in xs], axis=2) if len(xs) > 1
            else t[:, i0:i1, xs[0][2]:xs[0][3]] for _, _, i0, i1 in ys]
    return rows[0] if len(rows) == 1 else tf.concat(rows, axis=1)


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
