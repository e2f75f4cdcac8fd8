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
whose output is still there and retries the rest; a manifest with items done under other settings is refused
(use another OUTDIR), while failed items are retried under the new ones (a failure's fix is often a setting).
A bad item (corrupt or too-small image, a frame that fails) is recorded with its one-line error and the batch
goes on.

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

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GradfxError, OutputError, ParameterError
from ..images import atomic, video
from ..images.load import load_image
from ..progress import CancelToken, ProgressEvent
from ..registry import Registry, get_registry
from ..temporal.frames import FrameHistory
from .items import Item, VideoJob, discover, payloads
from .job import FrameSequence, Job, make_job, run_item, sequences
from .manifest import Manifest, Record


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
    _first: float = 0.0  # elapsed when the first of them finished (it built and traced the model)

    @property
    def eta(self) -> float | None:
        """Seconds left, from this session's mean time per item after the first (which also builds and traces
        the model); None until a second item finishes."""
        if self._finished <= 1:
            return None
        return ((self.elapsed - self._first) / (self._finished - 1)
                * max(self.total - self.done - self.failed - self.skipped, 0))

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
    #: (video, one-line error) for each video not written: its frames failed, or encoding did (not items)
    videos_failed: list[tuple[str, str]] = field(default_factory=list)
    #: what a user should know of an output that is not quite what was asked (a video cropped to even sides)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.videos_failed and not self.interrupted

    @property
    def pending(self) -> int:
        return self.total - len(self.done) - len(self.failed) - len(self.skipped)

def local_devices() -> list[str]:
    """One device per local worker: every visible GPU, else the CPU."""
    from ..models import device as devices

    devices.quiet_tensorflow()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return [f"gpu:{i}" for i in range(len(gpus))] or ["cpu"]

def _check_options(ray: Any, devices: Sequence[str] | None, gpus_per_item: float | None, workers: int | None
                   ) -> None:
    if ray and devices:
        raise ParameterError("--device (devices=) chooses local workers; with --ray, --gpus-per-item chooses")
    if not ray and (gpus_per_item is not None or workers is not None):
        raise ParameterError("--gpus-per-item and --workers size Ray's workers; add --ray, or leave them out")


def check_batch(target: str | os.PathLike, inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, *,
                params: Mapping[str, Any] | None = None, model: str | None = None, seed: int | None = None,
                longest_side: int | None = None, devices: Sequence[str] | None = None, ray: Any = None,
                gpus_per_item: float | None = None, workers: int | None = None,
                registry: Registry | None = None) -> int:
    """The checks of :func:`run_batch` that need no TensorFlow, for a batch that runs later (``gradfx batch
    --detach``): the options, the effect or recipe with its parameters and files, the output folder (created)
    and the inputs. Returns the number of items. The models and weights are checked when it runs."""
    _check_options(ray, devices, gpus_per_item, workers)
    job = make_job(target, params, model=model, seed=seed, longest_side=longest_side, registry=registry, models=False)
    items, _ = discover(inputs, atomic.output_folder(outdir), seed=job.seed)
    return len(items)


def run_batch(
    target: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    *,
    params: Mapping[str, Any] | None = None,
    model: str | None = None,
    weights: str | None = None,
    seed: int | None = None,
    longest_side: int | None = None,
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
    _check_options(ray, devices, gpus_per_item, workers)
    if ray:  # a missing Ray is the first thing said, before the checks that import TensorFlow
        from .ray_runner import import_ray

        import_ray()
    registry = registry or get_registry()
    job = make_job(target, params, model=model, weights=weights, seed=seed, longest_side=longest_side,
                   registry=registry)
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
    finished = {"items": 0, "first": 0.0}  # items finished in this session, and when the first did

    def emit(status: str, item: str | None = None, step: ProgressEvent | None = None,
             error: str | None = None, message: str | None = None) -> None:
        if progress is not None:
            progress(BatchEvent(summary.total, len(summary.done), len(summary.failed), len(summary.skipped),
                                time.perf_counter() - started, item, status, step, error, message,
                                int(finished["items"]), finished["first"]))

    def record(rec: Record) -> None:
        if rec.status == "cancelled":
            return
        manifest.add(rec)
        finished["items"] += 1
        if finished["items"] == 1:
            finished["first"] = time.perf_counter() - started
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

    def one(item: Item, payload: Any, device: str, name: str, history: FrameHistory | None) -> Record:
        emit("started", item.key)
        rec = run_item(job, item, payload, device=device, cancel=cancel, registry=registry, worker=name,
                       progress=lambda ev, key=item.key: emit("step", key, step=ev), history=history)
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
                    seq.finished(nxt[0], nxt[1], one(*nxt, device, name, seq.history))
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
            first = load_image(job.frames[0].output).rgb.shape[:2]
            video.write_video(job.output, (load_image(i.output).rgb for i in job.frames), job.fps,
                              audio_from=job.source if job.has_audio else None)
            rec.status = "done"
            summary.videos.append(job.output)
            if (shape := video.encoded_shape(*first)) != first:
                cut = {(True, False): "row is", (False, True): "column is"}.get(
                    (shape[0] != first[0], shape[1] != first[1]), "row and column are")
                summary.notes.append(f"{job.output} is {shape[1]}x{shape[0]}: its frames are {first[1]}x{first[0]} "
                                     f"and its codec takes only even sides, so their last {cut} cropped (the frames "
                                     f"in {Path(job.frames[0].output).parent}/ keep every pixel)")
        except GradfxError as exc:
            rec.error = str(exc).splitlines()[0]
    rec.seconds = round(time.perf_counter() - start, 3)
    manifest.add(rec)
    if rec.status != "done":  # not an item: counted apart ("0 done, 9 failed, -1 not run of 8")
        summary.videos_failed.append((job.key, rec.error or "failed"))
