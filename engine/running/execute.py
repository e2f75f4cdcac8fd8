"""Executing a :class:`~gradfx.engine.plan.Plan`: each step's effect runs with a :class:`RunContext` that carries
its model spec and resolved weights, the solver's out-of-memory retry, the run report, and a chain's hand-over
of each step's 8-bit output to the next step. Nothing here checks what a user asked for: :mod:`.plan` did."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import platform
import re
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..effect import Output, RunContext
from ..errors import GradfxError, ImageError, OutputError, ParameterError, PluginError, one_line
from ..images.arrays import resize_longest, to_uint8
from ..images.load import LoadedImage, load_image
from ..images.save import save_image
from ..params import Param
from ..progress import CancelToken, ProgressCallback, ProgressEvent
from ..temporal.frames import Previous
from ..version import __version__
from .plan import Plan, PlannedStep, complete, draft
from .result import Result


def execute(plan: Plan, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
            checkpoint: Any = None, stage_prefix: str = "", previous: Previous | None = None) -> Result:
    """Run ``plan`` (a :func:`~gradfx.engine.plan.draft` is completed first) and return its :class:`Result`.

    ``progress`` receives a :class:`ProgressEvent` per step; ``cancel`` stops after the current step (the
    result then holds the image so far, ``report["partial"]`` true). ``checkpoint`` (a
    :class:`~gradfx.engine.running.checkpoint.Checkpoint`) saves and restores solver state, a chain's per step
    (:meth:`~gradfx.engine.running.checkpoint.Checkpoint.for_step`);
    ``stage_prefix`` goes before every progress event's stage name. ``previous`` (one-effect plans only): the
    video frame before this one, for ``temporal=flow`` (``RunContext.previous``).
    """
    if plan.check_only:
        raise GradfxError("a check-only plan cannot run; plan again without check_only")
    plan = complete(plan)
    cancel = cancel or CancelToken()
    resolutions: dict[tuple[str, bool], Any] = {(s.spec.name, False): s.weights for s in plan.steps
                                                if s.spec is not None}
    if not plan.chain:
        result = _run_step(plan, plan.steps[0], plan.image, progress=progress, cancel=cancel,
                           stage_prefix=stage_prefix, checkpoint=checkpoint, resolutions=resolutions,
                           previous=previous)
        if checkpoint is not None and not result.partial:
            with contextlib.suppress(OutputError, OSError):  # unmarked, a resume finds every solution all the same
                checkpoint.mark_done()
        return result
    current = plan.image
    reports, result, n = [], None, len(plan.steps)
    for i, step in enumerate(plan.steps, 1):
        eff = step.effect
        try:
            result = _run_step(plan, step, current, progress=progress, cancel=cancel,
                               stage_prefix=f"{stage_prefix}step {i}/{n} {eff.name} · ", resolutions=resolutions,
                               checkpoint=None if checkpoint is None else checkpoint.for_step(i),
                               step_index=i - 1)
        except GradfxError as exc:  # a bad style image, layer or weights file: say which step (for the effect)
            # keep what caused it (a decoder's or TensorFlow's error: the TUI's details, the CLI's --debug)
            raise type(exc)(f"step {i} ({eff.name}): {str(exc).removeprefix(f'effect {eff.name!r}: ')}") \
                from exc.__cause__
        reports.append(result.report)
        if plan.snapshots is not None:
            save_image(plan.snapshots / f"step{i:02d}-{eff.name}.png", result.image, alpha=result.alpha)
        # Hand over what a saved file would hold (8 bits per channel), so a chain gives exactly the image of
        # its steps run one by one with `gradfx run`, and a snapshot is exactly the next step's input.
        rgb, alpha = _as_8bit(result.image), None if result.alpha is None else _as_8bit(result.alpha)
        if alpha is not None and float(alpha.min()) >= 1.0:
            alpha = None
        current = LoadedImage(rgb, alpha, f"<step {i} output>", "RGB")
        if result.partial or cancel.cancelled:  # cancelled as this step ended: the next one must not start
            break
    assert result is not None
    cut_short = len(reports) < n
    chain_report = {
        "chain": [r["effect"] for r in reports],
        "steps_run": len(reports),
        "steps_total": n,
        "partial": cut_short or any(r.get("partial") for r in reports),
        "status": next((r["status"] for r in reports if r.get("status") != "done"),
                       "cancelled" if cut_short else "done"),
        "warnings": list(dict.fromkeys(w for r in reports for w in r.get("warnings", []))),
        "messages": [f"step {i}: {m}" for i, r in enumerate(reports, 1) for m in r.get("messages", [])],
        "weights": reports[0].get("weights"),
        "seconds": round(sum(r["seconds"] for r in reports), 4),
        "seed": plan.seed,
        "reports": reports,
    }
    if plan.name is not None:
        chain_report["recipe"] = plan.name
    return Result(result.image, chain_report, result.alpha, result.extras)


def _as_8bit(image: np.ndarray) -> np.ndarray:
    return to_uint8(image).astype(np.float32) / 255.0


def _run_step(plan: Plan, step: PlannedStep, loaded: LoadedImage | None, *,
              progress: ProgressCallback | None, cancel: CancelToken, stage_prefix: str,
              resolutions: dict[tuple[str, bool], Any], checkpoint: Any = None,
              previous: Previous | None = None, step_index: int = 0) -> Result:
    """One effect of the plan (its ``step_index``, from 0) on ``loaded``; ``resolutions`` holds the weights
    decided per (model, top), so each is decided once per plan (the plan decided each step's own model
    without the top)."""
    from ..models import device as devices
    from ..models import effect_networks, weights
    from ..models import extractor as extractors
    from ..optimise import solver

    devices.quiet_tensorflow()
    import keras
    import tensorflow as tf

    eff, params, registry, seed = step.effect, step.params, plan.registry, plan.seed
    if progress is not None:  # each event says which effect, and which step of a chain, it comes from
        progress = functools.partial(_tagged, progress, eff.name, step_index, len(plan.steps))
    tf_device = devices.select_device(plan.device)
    keras.utils.set_random_seed(seed)
    used_weights: dict[str, Any] = {}
    images: dict[str, LoadedImage] = {}

    def load(value: Any) -> LoadedImage:
        if isinstance(value, LoadedImage):  # an image the caller passed in memory, converted when parsed
            return value
        path = os.fspath(value)
        if path not in images:
            try:
                images[path] = load_image(path)
            except ImageError as exc:  # say which parameter named the file (style, guide, mask...)
                names = [name for name, file in eff.schema.files(params) if file == path]
                if not names:
                    raise
                raise type(exc)(f"effect {eff.name!r}: parameter {names[0]!r}: {exc}") from None
        return images[path]

    def spec_of(model_name: str) -> Any:
        return step.spec if model_name == step.model else registry.model(model_name)

    def extractor(layers: tuple[str, ...], model_name: str, **options: Any) -> Any:
        spec = spec_of(model_name)
        top = bool(options.get("include_top", False))
        if (spec.name, top) not in resolutions:  # another model, or the classifier top: decided once per plan
            resolutions[spec.name, top] = weights.resolve_weights(spec, plan.weights, include_top=top)
        resolved = resolutions[spec.name, top]
        ext = extractors.get_extractor(spec, layers, resolved, seed=seed, device=tf_device, **options)
        used_weights.setdefault(model_name, resolved)
        return ext

    solves = [0]

    def solve(problem: solver.Problem, *, stage_prefix: str = "") -> solver.Solution:
        index = solves[0]
        solves[0] += 1
        spec = spec_of(problem.model or step.model)
        ext = None
        if problem.objective.layers:
            ext = extractor(tuple(sorted(problem.objective.layers)), problem.model or step.model,
                            pooling=problem.pooling, include_top=problem.include_top)
        hooks: dict[str, Any] = {}
        if checkpoint is not None:
            done = checkpoint.load_solution(index)
            if done is not None:
                return done
            hooks = {"checkpoint": lambda state: keep(checkpoint.save_state, index, state),
                     "checkpoint_every": checkpoint.every, "resume": checkpoint.load_state(index)}
        while True:
            try:
                solution = solver.Solver(problem, ext, seed=seed, progress=progress, cancel=cancel,
                                         min_size=spec.min_size, stage_prefix=stage_prefix, **hooks).run()
                break
            except tf.errors.ResourceExhaustedError:
                tile = solver.smaller_tile(problem, spec.min_size)
                if tile is None:
                    raise GradfxError(
                        f"effect {eff.name!r} ran out of device memory even with "
                        f"{f'{problem.tile} px tiles' if problem.tile else 'the whole image'}; use a smaller "
                        f"size, or --device cpu") from None
                ctx.warn(f"out of device memory; retrying with {tile} px tiles")
                problem = dataclasses.replace(problem, tile=tile)
                hooks["resume"] = None
        if checkpoint is not None and not solution.partial:
            keep(checkpoint.save_solution, index, solution)
        return solution

    def keep(save: Any, *args: Any) -> None:
        """A checkpoint write that fails (a full disk, a deleted folder) is a warning, said once: the run goes on
        and writes its output; only a resume from this checkpoint would start from an older state."""
        try:
            save(*args)
        except (OutputError, OSError) as exc:
            warning = f"checkpoint not written ({one_line(exc)}); the run goes on, but a resume would start from before"
            if not any(w.startswith("checkpoint not written") for w in ctx.warnings):
                ctx.warn(warning)

    own = {net.name: net for net in step.networks}

    def network(name: str) -> Any:
        if name not in own:
            plugin = registry.effect_plugin.get(eff.name, "?")
            raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) asked for the network {name!r}, which its "
                              f"networks_for() does not name for these parameters ({', '.join(own) or 'none'})")
        return effect_networks.load(own[name], seed=seed, device=tf_device)

    started = time.perf_counter()

    def report_progress(stage: str, step_index: int, steps: int, image: np.ndarray | None, message: str) -> None:
        if progress is not None:
            progress(ProgressEvent(stage=stage_prefix + stage, stage_index=0, stage_count=1, step=step_index,
                                   steps=steps, loss=math.nan, elapsed=time.perf_counter() - started,
                                   total_step=step_index, total_steps=steps, message=message,
                                   _preview=None if image is None else lambda: image))

    def run_effect(name: str, image: Any, **params: Any) -> Result:
        sub = complete(draft([(name, params)], image, weights=plan.weights, seed=seed, device=plan.device,
                             registry=registry, chain=False))
        alien = [net.name for net in sub.steps[0].networks if net.name not in own]
        if alien:
            plugin = registry.effect_plugin.get(eff.name, "?")
            raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) runs {name!r}, whose networks "
                              f"{', '.join(alien)} its networks_for() does not name for these parameters")
        return execute(sub, progress=progress, cancel=cancel, stage_prefix=f"{stage_prefix}{name} · ")

    ctx = RunContext(input=loaded, model=step.model, weights=plan.weights, seed=seed, device=tf_device,
                     load_image=load, spec=step.spec, resolved_weights=step.weights,
                     # an effect's own prefix ("frame 3/10 · ") goes after the chain's ("step 2/3 deepdream · ")
                     solve=lambda p, stage_prefix="", outer=stage_prefix: solve(p, stage_prefix=outer + stage_prefix),
                     extractor=extractor, previous=previous, network=network, networks=step.networks,
                     progress=report_progress, cancel=cancel, run_effect=run_effect)
    if step.note:  # the default model followed the weights: said first, once
        ctx.warn(step.note)
    with tf.device(tf_device):
        try:
            output = eff.run(ctx, params)
        except GradfxError as exc:
            layer = getattr(exc, "layer", None)
            named = [p.name for p in eff.schema if layer and _names_layer(p, params.get(p.name), layer)]
            if named and "parameter " not in str(exc):  # -p layer=no_such_layer: say which parameter
                raise type(exc)(f"effect {eff.name!r}: parameter {named[0]!r}: {exc}") from exc.__cause__
            if isinstance(exc, (ParameterError, ImageError)) and not str(exc).startswith(f"effect {eff.name!r}"):
                # a bad value found in build() (or the Problem it made): say which effect
                raise type(exc)(f"effect {eff.name!r}: {exc}") from exc.__cause__
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported as the plugin's failure
            plugin = registry.effect_plugin.get(eff.name, "?")
            error = PluginError(f"effect {eff.name!r} (plugin {plugin!r}) failed: {_exception_line(exc)}")
            if not ctx.solutions:
                raise error from exc
            # after the optimisation (in finish, or between two solves of run): keep the image it made
            ctx.warn(f"{error}; the image before it is kept (partial output)")
            image = np.asarray(ctx.solutions[-1].image, np.float32)
            output = Output(image[0] if image.ndim == 4 else image,
                            report={"partial": True, "status": "failed", "error": str(error)})
    if not isinstance(output, Output):
        raise PluginError(f"effect {eff.name!r} returned {type(output).__name__}, not gradfx.engine.Output")
    shape = np.shape(output.image)
    if len(shape) != 3 or shape[2] != 3:
        plugin = registry.effect_plugin.get(eff.name, "?")
        raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) returned an image of shape {shape}; "
                          f"expected height x width x 3 floats in [0, 1]")
    seconds = time.perf_counter() - started
    report = _report(plan, step, ctx, output, used_weights, tf_device, seconds, loaded)
    alpha = None
    if loaded is not None and loaded.alpha is not None:
        h, w = output.image.shape[:2]
        alpha = resize_longest(loaded.alpha, max(h, w)) if loaded.alpha.shape != (h, w) else loaded.alpha
        if alpha.shape != (h, w):
            alpha = None
    return Result(np.asarray(output.image, np.float32), report, alpha, dict(output.extras))


def _tagged(progress: ProgressCallback, effect: str, index: int, count: int, event: ProgressEvent) -> None:
    progress(dataclasses.replace(event, effect=effect, chain_index=index, chain_count=count))


def _exception_line(exc: BaseException) -> str:
    """``Type: message`` in one line. TensorFlow wraps an error raised while tracing in pages of "in user
    code" context whose last line is already ``Type: message``: keep that line, without naming the type
    twice (``KeyError: KeyError: 'x'``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    name = type(exc).__name__
    return last if last.startswith(f"{name}:") else f"{name}: {last}"


def _names_layer(p: Param, value: Any, layer: str) -> bool:
    """Whether parameter ``p``'s value names ``layer``: a layer list's or an objective's layer, or a plain text
    value (a plugin's ``Str("layer", ...)``) that holds the name."""
    if value is None:
        return False
    if layer in p.layer_names(value):
        return True
    return isinstance(value, str) and re.search(rf"(?<![\w]){re.escape(layer)}(?![\w])", value) is not None


def _report(plan: Plan, step: PlannedStep, ctx: RunContext, output: Output, used_weights: Mapping[str, Any],
            tf_device: str, seconds: float, loaded: LoadedImage | None) -> dict[str, Any]:
    import tensorflow as tf

    from ..models import device as devices
    from ..models import effect_networks

    eff, model = step.effect, step.model
    sols = ctx.solutions
    statuses = [s.status for s in sols]
    partial = any(s.partial for s in sols)
    rw = used_weights.get(model) or next(iter(used_weights.values()), None) if model is not None else None
    warnings = list(ctx.warnings)
    for w in used_weights.values():
        if getattr(w, "warning", None) and w.warning not in warnings:
            warnings.append(w.warning)
    losses = [x for s in sols for x in s.losses]
    return {
        "gradfx": __version__,
        "effect": eff.name,
        "plugin": plan.registry.effect_plugin.get(eff.name),
        "model": model,
        "weights": {
            "requested": plan.weights,
            "resolved": getattr(rw, "mode", None),
            "description": getattr(rw, "description", None),
            "path": getattr(rw, "path", None),
            "fell_back_to_random": bool(getattr(rw, "fell_back", False)),
        } if rw is not None or not step.networks else {  # no backbone: the networks it runs are its weights
            "requested": plan.weights,
            "resolved": "/".join(dict.fromkeys(net.mode for net in step.networks)),
            "description": effect_networks.describe(step.networks),
            "path": None,
            "fell_back_to_random": False,
        },
        "networks": [net.to_json() for net in step.networks],
        "params": step.effect.schema.to_json(step.params),
        "seed": plan.seed,
        "device": tf_device,
        "device_name": devices.device_name(tf_device),
        "input": None if loaded is None else {"source": loaded.source, "size": list(loaded.size),
                                              "mode": loaded.mode},
        "output_size": [int(output.image.shape[1]), int(output.image.shape[0])],
        "seconds": round(seconds, 4),
        "steps": len(losses),
        "evaluations": sum(s.evaluations for s in sols),
        "step_seconds": [round(x, 5) for s in sols for x in s.step_seconds],
        "losses": [x if math.isfinite(x) else None for x in losses],
        "status": next((s for s in statuses if s in ("non-finite", "cancelled")), "done"),
        "messages": [s.message for s in sols if s.message],
        "partial": partial,
        "warnings": warnings,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        **output.report,
    }


__all__ = ["execute"]
