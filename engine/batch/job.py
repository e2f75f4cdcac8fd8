"""What every item of a batch runs: the effect or recipe planned once (:func:`make_job`), one item run and
written (:func:`run_item`), and with ``temporal=flow`` the items as ordered sequences."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import GradfxError, ParameterError
from ..images import atomic
from ..images.load import load_image
from ..progress import CancelToken, ProgressEvent
from ..registry import Registry, get_registry
from ..temporal.frames import FrameHistory
from .items import Item, payloads
from .manifest import Record


@dataclass
class Job:
    """What every item runs: an effect with resolved parameters, or a recipe; the same for every worker."""

    effect: str | None
    params: dict[str, Any]
    recipe: Any = None  # a gradfx.engine.recipes.Recipe
    model: str | None = None
    weights: str | None = "auto"
    longest_side: int | None = None  #: --size: each item resized to this longest side first
    seed: int = 0  #: the batch seed (items derive theirs from it)
    settings: str = ""  #: digest of everything that changes an output (recorded in the manifest)
    _plan: Any = field(default=None, repr=False, compare=False)

    def plan(self, registry: Registry | None = None) -> Any:
        """The batch's checked :class:`~gradfx.engine.running.plan.Plan` without an image (each item gets its
        own image and seed): planned once per process, as `gradfx run` or `gradfx chain` plan, weights decided
        once; a Ray worker plans its own from this description."""
        from ..running.plan import complete, draft
        from ..running.recipes import plan_recipe

        if self._plan is None:
            if self.recipe is not None:
                self._plan = plan_recipe(self.recipe, weights=self.weights, model=self.model, registry=registry,
                                         models=False, image_later=True, longest_side=self.longest_side)
            else:  # the caller's parameters only: the plan decides the model and resolves the rest on it
                self._plan = draft([(self.effect, self.params)], model=self.model, weights=self.weights or "auto",
                                   registry=registry, chain=False, image_later=True, longest_side=self.longest_side)
        self._plan = complete(self._plan)
        return self._plan

    def __getstate__(self) -> dict[str, Any]:  # to Ray workers: the description, not this process's plan
        return {**self.__dict__, "_plan": None}

def make_job(target: str | os.PathLike, params: Mapping[str, Any] | None = None, *, model: str | None = None,
             weights: str | None = None, seed: int | None = None, longest_side: int | None = None,
             registry: Registry | None = None, models: bool = True) -> Job:
    """Plan the effect (or recipe file, ``*.toml``) once, before any item runs: effect, parameters, files,
    model and weights checked. ``weights`` and ``seed`` None: the recipe's, else ``auto`` and 0.
    ``models=False`` stops before the models and weights (the checks that import TensorFlow)."""
    from ..running.plan import check_seed
    from ..running.recipes import load_recipe

    text = os.fspath(target)
    if text.lower().endswith(".toml"):
        if params:
            raise ParameterError("-p/--param sets an effect's parameters; a recipe's go in its [[step]] tables")
        recipe = load_recipe(text)
        if any(step.params.get("temporal", "none") != "none" for step in recipe.steps):
            raise ParameterError(f"{text}: temporal=flow follows the frame before, which a recipe's steps cannot; "
                                 "batch the effect itself with -p temporal=flow")
        job = Job(None, {}, recipe=recipe, model=model, weights=weights or recipe.resolved_weights() or "auto",
                  longest_side=longest_side)
        seed = seed if seed is not None else (recipe.seed or 0)
        desc: Any = recipe.to_dict()
        first = (registry or get_registry()).effects.get(recipe.steps[0].effect)  # unknown: job.plan says so
    else:
        # files named by parameters made absolute (base_dir): Ray workers run in other folders
        from ..running.plan import draft

        job = Job(text, {}, model=model, weights=weights or "auto", longest_side=longest_side)
        job._plan = draft([(text, dict(params or {}))], model=model, weights=job.weights, registry=registry,
                          chain=False, image_later=True, base_dir=os.getcwd(), longest_side=longest_side)
        (step,) = job._plan.steps
        # what the caller set, parsed and with absolute paths: a Ray worker plans from it as `gradfx run` would
        job.effect, job.params = step.effect.name, {k: v for k, v in step.params.items() if k in step.asked}
        desc = {"effect": step.effect.name, "params": step.effect.schema.to_json(job.params)}
        first = step.effect
    if first is not None and not first.needs_input:  # each item's image would be ignored
        raise ParameterError(f"effect {first.name!r} makes an image from nothing; a batch needs an effect that "
                             "takes an input image" + (f" ({text} starts with it)" if job.recipe else ""))
    if models:
        job.plan(registry)  # every check, and the weights resolved, before any item runs
    job.seed = check_seed(0 if seed is None else seed)
    blob = json.dumps({"job": desc, "model": model, "weights": str(job.weights), "seed": job.seed, "size": longest_side},
                      sort_keys=True, default=str)
    job.settings = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return job

def run_item(job: Job, item: Item, payload: Any, *, device: str | None = None,
             progress: Callable[[ProgressEvent], None] | None = None, cancel: CancelToken | None = None,
             registry: Registry | None = None, worker: str = "", history: FrameHistory | None = None
             ) -> Record:
    """Run ``job`` on one item (``payload``: its image path, or a decoded frame) and write its output; any
    gradfx error becomes a failed record with the one-line message. A cancelled run writes nothing.
    ``history``: in a sequence (``temporal=flow``), the frames before (each one's payload and output file)."""
    from ..running.execute import execute
    from ..running.plan import check_input_size

    start = time.perf_counter()
    record = Record.failed(item, job.settings, worker=worker)
    try:
        if isinstance(payload, BaseException):
            raise payload
        image = load_image(payload, longest_side=job.longest_side)
        check_input_size(job.plan(registry).steps[0], image)  # too small: said before a network is built
        follow = None if history is None else history.previous(
            lambda source: load_image(source, longest_side=job.longest_side).rgb,
            lambda output: load_image(output).rgb)
        # what `gradfx run` / `gradfx chain` execute for this image and seed, from the batch's one plan
        result = execute(replace(job.plan(registry), image=image, seed=item.seed, device=device),
                         progress=progress, cancel=cancel, previous=follow)
        if result.partial:
            record.status = "cancelled" if cancel is not None and cancel.cancelled else "failed"
            record.error = "; ".join(result.report.get("messages", [])) or "stopped early"
        else:
            atomic.output_folder(Path(item.output).parent)
            result.save(item.output, overwrite=True, protect=[item.source])
            record.status = "done"
        _drop_seeded_models(result.report)
    except GradfxError as exc:
        record.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    record.seconds = round(time.perf_counter() - start, 3)
    return record

def _drop_seeded_models(report: Mapping[str, Any]) -> None:
    """Random weights are seeded per item: forget those networks, or a long batch keeps one per item."""
    reports = report.get("reports") or [report]
    if any((r.get("weights") or {}).get("resolved") == "random" for r in reports):
        from ..models import extractor

        extractor.clear_cache()

def sequences(job: Job, items: Sequence[Item]) -> list[list[Item]] | None:
    """With ``temporal=flow`` the items as ordered sequences, each frame following the one before: a video's
    frames; the images of one folder, by key. Every frame of a sequence runs with its first frame's seed (an
    effect with seeded random weights would otherwise get another network on every frame). Else None."""
    if job.effect is None or job.plan().steps[0].params.get("temporal") != "flow":
        return None
    groups: dict[str, list[Item]] = {}
    for item in items:
        group = item.source if item.frame is not None else os.path.dirname(item.source)
        groups.setdefault(group, []).append(item)
    out = []
    for group in groups.values():
        group.sort(key=lambda i: (i.frame or 0, i.key))
        out.append([replace(i, seed=group[0].seed) for i in group])
    return out

class FrameSequence:
    """One sequence's progress: the next frame to run and the frames before it (:attr:`history`: payload and
    output file, as many as the effect's ``temporal_frames``), which may be frames done in an earlier session
    (a rerun continues the sequence from their outputs)."""

    def __init__(self, items: Sequence[Item], todo: set[str], keep: int = 1) -> None:
        self._frames = payloads(items)
        self._todo = todo
        self.history: FrameHistory[Any] = FrameHistory(keep)
        self.busy = False  # a frame of it is running (Ray)
        self.done = False
        self.current: tuple[Item, Any] | None = None

    def next(self) -> tuple[Item, Any] | None:
        """The next frame to run (skipping frames done before, which join the history), or None at the end."""
        for item, payload in self._frames:
            if item.key in self._todo:
                return item, payload
            self.history.add(payload, item.output)
        return None

    def finished(self, item: Item, payload: Any, record: Record) -> None:
        """After ``item`` ran: the next frame follows it if it succeeded, else starts afresh."""
        if record.status == "done":
            self.history.add(payload, item.output)
        else:
            self.history.clear()
