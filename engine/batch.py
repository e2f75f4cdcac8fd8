"""Batches: one effect or recipe over many images and video frames, resumable, locally or on Ray.

::

    from gradfx.engine import run_batch
    summary = run_batch("deepdream", ["photos/", "clip.mp4"], "out/", params={"steps": 10}, seed=1)
    summary.failed        # [(item, one-line error), ...]

**Items.** An image file is one item; a folder gives every image under it (recursively, sorted by path); a
glob (``"shots/*.jpg"``) the images it matches; a video file (:data:`~gradfx.engine.video.VIDEO_FORMATS`)
one item per frame. An item's *key* is its path relative to the folder or glob base it came from (the file
name for a file argument), ``/``-separated; a video frame's key is ``clip.mp4#000003`` (1-based).

**Outputs** keep the keys' relative paths under OUTDIR as PNG: ``photos/a/b.jpg`` -> ``OUTDIR/a/b.png``;
frame 3 of ``clip.mp4`` -> ``OUTDIR/clip/000003.png``, and once every frame is done the video
``OUTDIR/clip.mp4`` at the source's frame rate with its audio copied (:mod:`gradfx.engine.video`).

**Seeds.** Item seed = the first 4 bytes (big-endian) of ``sha256(f"{seed}:{key}")``: :func:`item_seed`. So an
item's output does not depend on which other items are in the batch, their order, or the worker; on the
CPU it is bit for bit what ``gradfx run EFFECT INPUT --seed <item seed>`` writes (the manifest records
each item's seed). With ``weights="random"`` (or ``auto`` without ImageNet weights) the network's weights are
seeded by the item seed too, as ``gradfx run`` seeds them, so such a batch builds a network per item; with
ImageNet, ``hed`` or a weights file each model is built once per worker.

**Manifest.** ``OUTDIR/manifest.jsonl`` gets one JSON line per item as it finishes: ``input``, ``item``,
``output``, ``status`` (``done`` or ``failed``), ``seconds``, ``error``, ``seed``, ``settings`` (a digest of
the effect, parameters, model, weights, seed and size). A rerun skips items done with the same settings
whose output is still there and retries the rest; a manifest written with other settings is refused (use
another OUTDIR). A bad item (corrupt or too-small image, a frame that fails) is recorded with its one-line
error and the batch goes on.

**Plan.** The effect or recipe is planned once (:mod:`gradfx.engine.plan`: parameters, files, model and
weights checked, before any item runs); each item executes that plan with its own image and seed
(:func:`gradfx.engine.execute.execute`, what ``gradfx run`` and ``gradfx chain`` execute).

**Workers.** Locally: one thread per device (``devices``; default one per visible GPU, else the CPU), each
running items one after another in this process, so models are built once (the extractor cache) and
shared. ``ray=`` runs the same items as Ray actor tasks
(:mod:`gradfx.engine.ray_runner`); the workers write outputs straight into OUTDIR, which on a cluster must
be storage every node sees at the same path.

**Sequences.** With an effect's ``temporal=flow`` (docs/video.md) a video's frames, and the images of one
folder by key, form a sequence (:func:`sequences`): its frames run in order, each with the frame before (its
input and its output file, so a rerun continues from the outputs on disk), all with the first frame's
seed; a local worker takes a whole sequence, and on Ray each sequence is an ordered chain of tasks.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import atomic, imageio, video
from .errors import GradfxError, ImageError, OutputError, ParameterError
from .progress import CancelToken, ProgressEvent
from .registry import Registry, get_registry

#: the manifest's file name inside OUTDIR
MANIFEST = "manifest.jsonl"
#: extensions of the files a folder or glob contributes as images
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".ppm", ".pgm",
                  ".pbm", ".tga", ".qoi", ".avif", ".heic", ".heif", ".mpo")


def item_seed(seed: int, key: str) -> int:
    """The seed of item ``key`` in a batch with ``seed``: sha256 of ``"{seed}:{key}"``, first 4 bytes."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()[:4], "big")


@dataclass(frozen=True)
class Item:
    """One unit of work: an image file, or one frame of a video (``frame`` >= 1)."""

    key: str  #: relative path (the seed and the output follow from it)
    source: str  #: the input file (the video, for a frame)
    output: str  #: where its image goes
    seed: int
    frame: int | None = None


@dataclass(frozen=True)
class VideoJob:
    """A video input: its frames are items; once all are done they are encoded into ``output``."""

    key: str
    source: str
    output: str
    fps: Any
    has_audio: bool
    frames: tuple[Item, ...]


@dataclass
class Job:
    """What every item runs: an effect with resolved parameters, or a recipe; the same for every worker."""

    effect: str | None
    params: dict[str, Any]
    recipe: Any = None  # a gradfx.engine.recipes.Recipe
    model: str | None = None
    weights: str | None = "auto"
    size: int | None = None
    seed: int = 0  #: the batch seed (items derive theirs from it)
    settings: str = ""  #: digest of everything that changes an output (recorded in the manifest)
    _plan: Any = field(default=None, repr=False, compare=False)

    def plan(self, registry: Registry | None = None) -> Any:
        """The batch's checked :class:`~gradfx.engine.plan.Plan` without an image (each item gets its own
        image and seed): built once per process, weights resolved once; a Ray worker builds its own."""
        if self._plan is None:
            from .plan import complete, draft
            from .recipes import plan_recipe

            if self.recipe is not None:
                p = plan_recipe(self.recipe, weights=self.weights, model=self.model, registry=registry,
                                check_only=True, models=False, own_input=False, max_size=self.size)
            else:
                # the caller's parameters only, as `gradfx run` gets them: the plan decides the model (and
                # whether the default one follows the weights) and resolves the rest on it
                p = draft([(self.effect, self.params)], model=self.model, weights=self.weights or "auto",
                          registry=registry, chain=False, check_only=True, max_size=self.size)
            self._plan = complete(replace(p, check_only=False))  # check_only only waived the input image
        return self._plan

    def __getstate__(self) -> dict[str, Any]:  # to Ray workers: the description, not this process's plan
        return {**self.__dict__, "_plan": None}


@dataclass
class Record:
    """A manifest line."""

    input: str
    item: str
    output: str | None
    status: str  #: done | failed (and, never written, cancelled)
    seconds: float = 0.0
    error: str | None = None
    seed: int | None = None
    settings: str = ""
    worker: str = ""

    @classmethod
    def failed(cls, item: Item, settings: str, error: str | None = None, worker: str = "") -> Record:
        """A failed record for ``item`` (the status changes when it succeeds)."""
        source = item.source if item.frame is None else f"{item.source}#{item.frame}"
        return cls(source, item.key, item.output, "failed", error=error, seed=item.seed, settings=settings,
                   worker=worker)

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in ("input", "item", "output", "status", "seconds", "error",
                                                          "seed", "settings", "worker")})


@dataclass
class BatchEvent:
    """A progress report over the batch: after each item, and (locally) for each step of an item."""

    total: int
    done: int
    failed: int
    skipped: int
    elapsed: float
    item: str | None = None
    status: str = "step"  #: notice | started | step | done | failed | video
    step: ProgressEvent | None = None
    error: str | None = None
    #: with status "notice" (before any item runs): a fall-back the batch takes (the model, the weights)
    message: str | None = None
    _finished: int = 0  # items finished in this session (the rate behind the ETA)

    @property
    def eta(self) -> float | None:
        """Seconds left, from this session's mean time per item; None before the first item finishes."""
        if self._finished <= 0:
            return None
        return self.elapsed / self._finished * max(self.total - self.done - self.failed - self.skipped, 0)


@dataclass
class BatchSummary:
    """What :func:`run_batch` did."""

    outdir: Path
    manifest: Path
    total: int
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (item key, one-line error)
    skipped: list[str] = field(default_factory=list)  #: done by an earlier run with the same settings
    videos: list[str] = field(default_factory=list)  #: videos written
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    @property
    def pending(self) -> int:
        return self.total - len(self.done) - len(self.failed) - len(self.skipped)


# ------------------------------------------------------------------------------------------ discovery


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _files_under(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def _glob_base(pattern: str) -> Path:
    fixed = []
    for p in Path(pattern).parts:
        if globlib.has_magic(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path(".")


def _sources(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(file, key) for every input file, in a stable order; errors for inputs that give nothing."""
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            files = [f for f in _files_under(path) if _is_image(f) or video.is_video(f)]
            if not files:
                raise ImageError(f"folder {text!r} holds no images or videos; check the path")
            found += [(f, f.relative_to(path).as_posix()) for f in files]
        elif path.is_file():
            found.append((path, path.name))
        elif globlib.has_magic(text):
            base = _glob_base(text)
            files = sorted(Path(f) for f in globlib.glob(text, recursive=True) if Path(f).is_file())
            files = [f for f in files if _is_image(f) or video.is_video(f)]
            if not files:
                raise ImageError(f"{text!r} matches no images or videos; check the pattern")
            found += [(f, f.relative_to(base).as_posix()) for f in files]
        else:
            raise ImageError(f"input {text!r} does not exist; give image files, folders, globs or videos")
    return found


def discover(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, *, seed: int = 0
             ) -> tuple[list[Item], list[VideoJob]]:
    """Every item of ``inputs`` with its key, output path and seed, and the videos to encode; a file named
    twice counts once; two files whose outputs would collide (``a.jpg`` and ``a.png``) are an error."""
    out = Path(outdir).absolute()  # absolute: Ray workers run in other folders
    items: list[Item] = []
    videos: list[VideoJob] = []
    owners: dict[str, str] = {}

    def claim(target: Path, source: Path) -> str:
        key = os.path.normcase(str(target))
        if key in owners and owners[key] != str(source):
            raise OutputError(f"{source} and {owners[key]} would both write {target}; rename one, or run them "
                              "in separate batches")
        owners[key] = str(source)
        return str(target)

    seen: set[tuple[str, str]] = set()
    for file, key in _sources(inputs):
        file = file.absolute()
        if (os.path.realpath(file), key) in seen:  # the same file named twice (a folder and a file in it)
            continue
        seen.add((os.path.realpath(file), key))
        stem = key[: -len(file.suffix)] if file.suffix else key
        if video.is_video(file):
            info = video.probe(file)
            frames = tuple(
                Item(f"{key}#{i:06d}", str(file), claim(out / stem / f"{i:06d}.png", file),
                     item_seed(seed, f"{key}#{i:06d}"), frame=i)
                for i in range(1, info.frames + 1))
            items += frames
            videos.append(VideoJob(key, str(file), claim(out / key, file), info.fps, info.has_audio, frames))
        else:
            items.append(Item(key, str(file), claim(out / f"{stem}.png", file), item_seed(seed, key)))
    if not items:
        raise ImageError("no items: the inputs hold no images or video frames")
    return items, videos


# ------------------------------------------------------------------------------------------- the job


def make_job(target: str | os.PathLike, params: Mapping[str, Any] | None = None, *, model: str | None = None,
             weights: str | None = None, seed: int | None = None, size: int | None = None,
             registry: Registry | None = None) -> Job:
    """Plan the effect (or recipe file, ``*.toml``) once, before any item runs: effect, parameters, files,
    model and weights checked. ``weights`` and ``seed`` None: the recipe's, else ``auto`` and 0."""
    from .plan import check_seed
    from .recipes import load_recipe

    text = os.fspath(target)
    if text.lower().endswith(".toml"):
        if params:
            raise ParameterError("-p/--param sets an effect's parameters; a recipe's go in its [[step]] tables")
        recipe = load_recipe(text)
        if any(step.params.get("temporal", "none") != "none" for step in recipe.steps):
            raise ParameterError(f"{text}: temporal=flow follows the frame before, which a recipe's steps cannot; "
                                 "batch the effect itself with -p temporal=flow")
        job = Job(None, {}, recipe=recipe, model=model, weights=weights or recipe.resolved_weights() or "auto",
                  size=size)
        seed = seed if seed is not None else (recipe.seed or 0)
        desc: Any = recipe.to_dict()
        first = (registry or get_registry()).effects.get(recipe.steps[0].effect)  # unknown: job.plan says so
    else:
        # files named by parameters made absolute (base_dir): Ray workers run in other folders
        job = Job(text, dict(params or {}), model=model, weights=weights or "auto", size=size)
        from .plan import draft

        (step,) = draft([(text, job.params)], model=model, registry=registry, chain=False, check_only=True,
                        base_dir=os.getcwd(), max_size=size).steps
        # only what the caller set (their file paths now absolute): defaults are resolved by the plan, on the
        # model it decides, exactly as for `gradfx run`
        job.effect, job.params = step.effect.name, {k: v for k, v in step.params.items() if k in step.asked}
        desc = {"effect": step.effect.name, "params": job.params}
        first = step.effect
    if first is not None and not first.needs_input:  # each item's image would be ignored
        raise ParameterError(f"effect {first.name!r} makes an image from nothing; a batch needs an effect that "
                             "takes an input image" + (f" ({text} starts with it)" if job.recipe else ""))
    job.plan(registry)  # every check, and the weights resolved, before any item runs
    job.seed = check_seed(0 if seed is None else seed)
    blob = json.dumps({"job": desc, "model": model, "weights": str(job.weights), "seed": job.seed, "size": size},
                      sort_keys=True, default=str)
    job.settings = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return job


def run_item(job: Job, item: Item, payload: Any, *, device: str | None = None,
             progress: Callable[[ProgressEvent], None] | None = None, cancel: CancelToken | None = None,
             registry: Registry | None = None, worker: str = "", previous: Sequence[tuple[Any, str]] | None = None
             ) -> Record:
    """Run ``job`` on one item (``payload``: its image path, or a decoded frame) and write its output; any
    gradfx error becomes a failed record with the one-line message. A cancelled run writes nothing.
    ``previous``: in a sequence (``temporal=flow``), the frames before, most recent first (more than one with
    ``temporal_frames`` > 1): each one's payload and output file."""
    from .execute import execute
    from .temporal import Previous

    start = time.perf_counter()
    record = Record.failed(item, job.settings, worker=worker)
    try:
        if isinstance(payload, BaseException):
            raise payload
        image = imageio.load_image(payload, max_size=job.size)
        follow = None
        if previous:
            follow = Previous.chain([Previous(imageio.load_image(source, max_size=job.size).rgb,
                                              imageio.load_image(output).rgb) for source, output in previous])
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
        from . import extractor

        extractor.clear_cache()


# ------------------------------------------------------------------------------------------ manifest


class Manifest:
    """``OUTDIR/manifest.jsonl``: read at start (last line per item wins), appended and fsynced per item."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / MANIFEST
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash: that item simply runs again
                    continue
                if isinstance(data, dict) and "item" in data:
                    self.records[str(data["item"])] = data

    def check_settings(self, settings: str) -> None:
        other = {r.get("settings") for r in self.records.values()} - {settings}
        if other:
            raise OutputError(f"{self.path} records a batch with other settings (effect, parameters, model, "
                              "weights, seed or size); use another output folder (-o), or delete the manifest "
                              "to start over")

    def is_done(self, item: Item) -> bool:
        r = self.records.get(item.key)
        return bool(r and r.get("status") == "done" and Path(item.output).exists())

    def add(self, record: Record) -> None:
        with self._lock:
            self.records[record.item] = json.loads(record.to_json())
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(record.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------------- run


def payloads(items: Sequence[Item]) -> Iterator[tuple[Item, Any]]:
    """(item, what to load): the path of an image, the decoded frame of a video (each video decoded once,
    in order), or the exception that made a frame unreadable."""
    reader: Iterator[Any] | None = None
    current: str | None = None
    position = 0
    for item in items:
        if item.frame is None:
            yield item, item.source
            continue
        if item.source != current or item.frame <= position:
            current, position, reader = item.source, 0, video.read_frames(item.source)
        frame: Any = None
        try:
            assert reader is not None
            while position < item.frame:
                frame = next(reader)
                position += 1
        except StopIteration:
            frame = ImageError(f"video {item.source!r} has no frame {item.frame} (it ended at {position})")
            reader = iter(())
        except ImageError as exc:
            frame = exc
            reader = iter(())
            position = item.frame
        yield item, frame


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
    """One sequence's progress: the next frame to run and the frames before it (payload, output file; most
    recent first, as many as ``keep``: the effect's ``temporal_frames``), which may be frames done in an
    earlier session (a rerun continues the sequence from their outputs)."""

    def __init__(self, items: Sequence[Item], todo: set[str], keep: int = 1) -> None:
        self._frames = payloads(items)
        self._todo = todo
        self._keep = max(1, keep)
        self.previous: list[tuple[Any, str]] = []
        self.busy = False  # a frame of it is running (Ray)
        self.done = False
        self.current: tuple[Item, Any] | None = None

    def next(self) -> tuple[Item, Any] | None:
        """The next frame to run (skipping frames done before, which become ``previous``), or None at the end."""
        for item, payload in self._frames:
            if item.key in self._todo:
                return item, payload
            self._follow(payload, item.output)
        return None

    def finished(self, item: Item, payload: Any, record: Record) -> None:
        """After ``item`` ran: it is the next frame's previous if it succeeded, else the next starts afresh."""
        if record.status == "done":
            self._follow(payload, item.output)
        else:
            self.previous = []

    def _follow(self, payload: Any, output: str) -> None:
        self.previous = [(payload, output), *self.previous][:self._keep]


def local_devices() -> list[str]:
    """One device per local worker: every visible GPU, else the CPU."""
    from . import device as devices

    devices.quiet_tensorflow()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return [f"gpu:{i}" for i in range(len(gpus))] or ["cpu"]


def run_batch(
    target: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    *,
    params: Mapping[str, Any] | None = None,
    model: str | None = None,
    weights: str | None = None,
    seed: int | None = None,
    size: int | None = None,
    devices: Sequence[str] | None = None,
    ray: str | bool | None = None,
    gpus_per_item: float | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[BatchEvent], None] | None = None,
    stop: CancelToken | None = None,
    cancel: CancelToken | None = None,
    registry: Registry | None = None,
) -> BatchSummary:
    """Run an effect (``target``: a name, with ``params``) or a recipe (``target``: a ``.toml`` file) on every
    item of ``inputs`` into ``outdir``; see the module docstring for items, outputs, seeds and the manifest.
    ``weights`` and ``seed`` None: the recipe's, else ``auto`` and 0.

    Everything is checked before any compute: the effect or recipe, parameters, model, a weights file, the
    inputs, output collisions, and existing files in OUTDIR that this batch did not write (refused unless
    ``overwrite``). ``devices``: one local worker per device (default: each GPU, else the CPU). ``ray``:
    ``True`` / ``"local"`` starts a local Ray cluster, ``"auto"`` or an address joins one;
    ``gpus_per_item`` and ``workers`` size its actors. ``stop`` lets the items in flight finish and starts
    no more; ``cancel`` abandons them too (nothing of theirs is recorded, so a rerun does them).
    """
    if ray and devices:
        raise ParameterError("--device (devices=) chooses local workers; with --ray, --gpus-per-item chooses")
    if not ray and (gpus_per_item is not None or workers is not None):
        raise ParameterError("--gpus-per-item and --workers size Ray's workers; add --ray, or leave them out")
    if ray:  # a missing Ray is the first thing said, before the checks that import TensorFlow
        from .ray_runner import import_ray

        import_ray()
    registry = registry or get_registry()
    job = make_job(target, params, model=model, weights=weights, seed=seed, size=size, registry=registry)
    out = atomic.output_folder(outdir)
    items, videos = discover(inputs, out, seed=job.seed)
    manifest = Manifest(out)
    manifest.check_settings(job.settings)
    summary = BatchSummary(out, manifest.path, len(items))
    todo = []
    for item in items:
        if manifest.is_done(item):
            summary.skipped.append(item.key)
        else:
            todo.append(item)
    sources = {os.path.realpath(i.source) for i in items}
    for key, output in [(i.key, i.output) for i in todo] + [(f"{v.key}#video", v.output) for v in videos]:
        if os.path.realpath(output) in sources:
            raise OutputError(f"{output}: refusing to write over the input; choose another output folder")
        if not overwrite and key not in manifest.records and os.path.lexists(output):
            raise OutputError(f"{output} exists and is not from this batch; pass --overwrite to replace "
                              "it, or choose another output folder")
    stop = stop or CancelToken()
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    finished = [0]

    def emit(status: str, item: str | None = None, step: ProgressEvent | None = None,
             error: str | None = None, message: str | None = None) -> None:
        if progress is not None:
            progress(BatchEvent(summary.total, len(summary.done), len(summary.failed), len(summary.skipped),
                                time.perf_counter() - started, item, status, step, error, message, finished[0]))

    def record(rec: Record) -> None:
        if rec.status == "cancelled":
            return
        manifest.add(rec)
        finished[0] += 1
        if rec.status == "done":
            summary.done.append(rec.item)
        else:
            summary.failed.append((rec.item, rec.error or "failed"))
        emit(rec.status, rec.item, error=rec.error)

    ordered = sequences(job, items)
    keys = {item.key for item in todo}
    keep = int(job.plan().steps[0].params.get("temporal_frames", 1)) if job.effect is not None else 1
    seqs = None if ordered is None else [FrameSequence(seq, keys, keep) for seq in ordered
                                         if keys & {i.key for i in seq}]
    for line in job.plan().notices:  # said once, before any item computes
        emit("notice", message=line)
    emit("started")
    if todo:
        if ray:
            from .ray_runner import run_on_ray

            run_on_ray(job, todo, address=None if ray is True or ray == "local" else str(ray),
                       gpus_per_item=gpus_per_item, workers=workers, record=record, stop=stop, cancel=cancel,
                       step=None if progress is None else lambda key, ev: emit("step", key, step=ev),
                       sequences=seqs)
        else:
            _run_local(job, todo, list(devices) if devices else local_devices(), record=record, emit=emit,
                       stop=stop, cancel=cancel, registry=registry, sequences=seqs)
    summary.interrupted = stop.cancelled or cancel.cancelled
    if not summary.interrupted:
        for job_video in videos:
            _encode(job_video, manifest, summary, job.settings)
            emit("video", job_video.key)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _run_local(job: Job, todo: Sequence[Item], devices: Sequence[str], *, record: Callable[[Record], None],
               emit: Callable[..., None], stop: CancelToken, cancel: CancelToken, registry: Registry,
               sequences: Sequence[FrameSequence] | None = None) -> None:
    """One thread per device pulls items from a shared iterator (frames decoded lazily, in order) and runs
    them; this thread records results as they come, so the manifest has a single writer. With
    ``sequences`` (temporal=flow) a thread takes a whole sequence and runs its frames in order."""
    source = payloads(todo)
    pending = iter(sequences or ())
    lock = threading.Lock()
    results: queue.Queue[Record | BaseException | None] = queue.Queue()

    def one(item: Item, payload: Any, device: str, name: str, previous: Sequence[tuple[Any, str]] | None
            ) -> Record:
        emit("started", item.key)
        rec = run_item(job, item, payload, device=device, cancel=cancel, registry=registry, worker=name,
                       progress=lambda ev, key=item.key: emit("step", key, step=ev), previous=previous)
        results.put(rec)
        return rec

    def work(device: str, name: str) -> None:
        try:
            while sequences is not None and not stop.cancelled and not cancel.cancelled:
                with lock:
                    seq = next(pending, None)
                if seq is None:
                    break
                while not stop.cancelled and not cancel.cancelled and (nxt := seq.next()) is not None:
                    seq.finished(nxt[0], nxt[1], one(*nxt, device, name, seq.previous))
            while sequences is None and not stop.cancelled and not cancel.cancelled:
                with lock:
                    nxt = next(source, None)
                if nxt is None:
                    break
                one(*nxt, device, name, None)
        except BaseException as exc:  # noqa: BLE001 - a bug in a worker ends the batch with its error
            results.put(exc)
        finally:
            results.put(None)

    threads = [threading.Thread(target=work, args=(d, f"{i}:{d}"), name=f"gradfx-batch-{i}", daemon=True)
               for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    running = len(threads)
    error: BaseException | None = None
    while running:
        try:
            got = results.get(timeout=0.2)  # a timeout keeps Ctrl-C (a signal in this thread) responsive
        except queue.Empty:
            continue
        except BaseException as exc:  # KeyboardInterrupt without a handler: abandon the items, then raise
            error = error or exc
            cancel.cancel()
            continue
        if got is None:
            running -= 1
        elif isinstance(got, BaseException):
            error = error or got
            cancel.cancel()
        else:
            record(got)
    if error is not None:
        raise error


def _encode(job: VideoJob, manifest: Manifest, summary: BatchSummary, settings: str) -> None:
    """Encode a video whose frames are all done (once: a rerun skips it), else record why it was not."""
    key = f"{job.key}#video"
    failed = [i.frame for i in job.frames if not manifest.is_done(i)]
    rec = Record(job.source, key, job.output, "failed", settings=settings)
    prior = manifest.records.get(key)
    redone = any(i.key in summary.done for i in job.frames)
    if not failed and not redone and prior and prior.get("status") == "done" and Path(job.output).exists():
        return
    start = time.perf_counter()
    if failed:
        rec.error = (f"video not written: frame(s) {', '.join(map(str, failed[:10]))}"
                     f"{'...' if len(failed) > 10 else ''} failed; rerun the batch to retry them")
    else:
        try:
            video.write_video(job.output, (imageio.load_image(i.output).rgb for i in job.frames), job.fps,
                              audio_from=job.source if job.has_audio else None)
            rec.status = "done"
            summary.videos.append(job.output)
        except GradfxError as exc:
            rec.error = str(exc).splitlines()[0]
    rec.seconds = round(time.perf_counter() - start, 3)
    manifest.add(rec)
    if rec.status != "done":
        summary.failed.append((key, rec.error or "failed"))


__all__ = ["run_batch", "discover", "item_seed", "make_job", "run_item", "payloads", "Item", "VideoJob", "Job",
           "Record", "BatchEvent", "BatchSummary", "Manifest", "MANIFEST", "IMAGE_SUFFIXES"]
