"""``run_batch(..., ray=...)``: a batch's items as tasks on Ray actors (imported only then).

One actor per worker builds its models on its first item and keeps them (the engine's extractor cache lives
in the actor's process), so each model is built once per worker, not once per item. Each actor reserves
``gpus_per_item`` GPUs (default: 1 where the cluster has GPUs, else none) and one CPU, and runs one item at a
time; there are as many actors as the cluster has room for (or ``workers``), never more than items.

Outputs: the workers write each item's image straight into OUTDIR (atomically, as every gradfx output) and
return only its manifest record, so images never pass through the object store (progress events, throttled,
come back through a Ray queue when the caller wants them). On a cluster OUTDIR must
therefore be storage that every node mounts at the same path (NFS, a cloud bucket's FUSE mount...), and the
inputs must be readable at the paths given (images are read by the workers; video frames are decoded by
the driver and sent through the object store). Every node needs the same gradfx version and plugins.

Failures: an item's own error (a corrupt image, a parameter its size rejects) comes back as a failed record,
so Ray does not retry it; a worker process that dies mid-item is restarted by Ray (``max_restarts``) and the
item retried (``max_task_retries``), so the batch still completes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import GradfxError
from ..progress import CancelToken, ProgressEvent
from ..temporal.frames import FrameHistory
from .items import Item, payloads
from .job import FrameSequence, Job, run_item
from .manifest import Record

#: how often Ray restarts a dead worker, and retries the item it was running
MAX_RESTARTS = 4
MAX_TASK_RETRIES = 4
_INSTALL = "--ray needs Ray; install it with: pip install 'gradfx[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GradfxError(_INSTALL) from None
    return ray


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (``auto`` or host:port or ray://...), or start a small local one when
    None; returns whether this call started Ray (and so should shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     object_store_memory=200 * 1024 * 1024)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray cluster" if address is None else f"the Ray cluster at {address!r}"
        raise GradfxError(f"cannot start or join {where}: {str(exc).splitlines()[0]}; check the address "
                          "(or 'ray status' on the head node)") from None
    return True


class Worker:
    """A Ray actor's body: keeps one process (and its models) for many items."""

    def __init__(self, job: Job, device: str | None) -> None:
        self.job = job
        self.device = device

    def pid(self) -> int:
        return os.getpid()

    def run(self, item: Item, payload: Any, steps: Any = None, history: FrameHistory | None = None) -> Record:
        """Run one item; with ``steps`` (a Ray queue), report its progress there (at most twice a second,
        and its last step); ``history``: the frames before, in a sequence (temporal=flow)."""
        sender = None if steps is None else _StepSender(steps, item.key)
        record = run_item(self.job, item, payload, device=self.device, worker=f"ray:{os.getpid()}",
                          progress=sender, history=history)
        if sender is not None:
            sender.flush()
        return record


class _StepSender:
    """A progress callback in a worker that puts ``(item key, event fields)`` on a Ray queue, throttled."""

    def __init__(self, queue: Any, key: str, every: float = 0.5) -> None:
        self.queue, self.key, self.every, self.last = queue, key, every, 0.0
        self.held: ProgressEvent | None = None  # the latest event not sent yet

    def __call__(self, ev: ProgressEvent) -> None:
        self.held = ev
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        """Send the latest event held back (the item's last one, when it ends)."""
        ev, self.held = self.held, None
        if ev is None:
            return
        self.last = time.monotonic()
        fields = {k: getattr(ev, k) for k in ("stage", "stage_index", "stage_count", "step", "steps", "loss",
                                              "elapsed", "total_step", "total_steps", "message", "effect",
                                              "chain_index", "chain_count", "warmup_elapsed", "warmup_step")}
        try:
            self.queue.put_nowait((self.key, fields))
        except Exception:  # noqa: BLE001 - a full or gone queue costs a progress bar, never the item
            pass


def size_workers(resources: dict[str, float], gpus_per_item: float | None, workers: int | None,
                 items: int) -> tuple[int, float]:
    """(number of actors, GPUs each) for a cluster's ``resources`` (``ray.cluster_resources()``): GPUs per
    item default to 1 where there are GPUs, else 0 (one CPU each); as many actors as fit, at most ``workers``
    and never more than ``items``."""
    gpus = float(resources.get("GPU", 0))
    per_item = (1.0 if gpus else 0.0) if gpus_per_item is None else float(gpus_per_item)
    if per_item < 0 or per_item > gpus:
        raise GradfxError(f"--gpus-per-item {per_item:g} but the cluster has {gpus:g} GPU(s); give a number "
                          f"from 0 (CPUs only) to {gpus:g}")
    if workers is not None and workers < 1:
        raise GradfxError(f"--workers {workers}: give at least 1")
    room = int(gpus // per_item) if per_item else int(resources.get("CPU", 1))
    return max(1, min(room, workers or room, items)), per_item


def run_on_ray(job: Job, todo: Sequence[Item], *, address: str | None, gpus_per_item: float | None,
               workers: int | None, record: Callable[[Record], None], stop: CancelToken,
               cancel: CancelToken, step: Callable[[str, ProgressEvent], None] | None = None,
               sequences: Sequence[FrameSequence] | None = None) -> None:
    """Run ``todo`` on Ray actors, calling ``record`` (on this thread) as each item finishes, and ``step``
    with an item's key and progress events (sent by the workers through a Ray queue) when given. With
    ``sequences`` (temporal=flow) each sequence is an ordered chain of tasks: its next frame is submitted
    when the one before has finished (and gets that frame's input and output file), many sequences at once."""
    ray = import_ray()
    started = connect(address)
    queue = None
    try:
        if step is not None:
            from ray.util.queue import Queue

            queue = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        count, per_item = size_workers(ray.cluster_resources(), gpus_per_item, workers, len(todo))
        actor_cls = ray.remote(num_cpus=1, num_gpus=per_item, max_restarts=MAX_RESTARTS,
                               max_task_retries=MAX_TASK_RETRIES)(Worker)
        device = "gpu" if per_item else "cpu"
        actors = [actor_cls.remote(job, device) for _ in range(count)]
        _drive(ray, actors, todo, settings=job.settings, record=record, stop=stop, cancel=cancel,
               queue=queue, step=step, sequences=sequences)
    finally:
        if queue is not None:
            queue.shutdown()
        if started:
            ray.shutdown()


def _drive(ray: Any, actors: list, todo: Sequence[Item], *, settings: str, record: Callable[[Record], None],
           stop: CancelToken, cancel: CancelToken, queue: Any = None,
           step: Callable[[str, ProgressEvent], None] | None = None,
           sequences: Sequence[FrameSequence] | None = None) -> None:
    source = payloads(todo)
    free = list(actors)
    running: dict[Any, tuple[Item, Any]] = {}
    exhausted = False
    while True:
        while free and not exhausted and not stop.cancelled and not cancel.cancelled:
            nxt = next(source, None) if sequences is None else _ready_frame(sequences)
            if nxt is None:  # a sequence's next frame waits for the one running, unless none is running
                exhausted = sequences is None or not running
                break
            item, payload, *history = nxt
            actor = free.pop()
            running[actor.run.remote(item, payload, queue, *history)] = (item, actor)
        if not running:
            return
        if cancel.cancelled:  # abandon the items in flight: nothing recorded, a rerun does them
            for _, actor in running.values():  # a running actor task cannot be cancelled, only its actor killed
                ray.kill(actor, no_restart=True)
            return
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        _forward_steps(queue, step)
        for ref in ready:
            item, actor = running.pop(ref)
            try:
                rec = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - the worker died more often than Ray retries
                rec = Record.failed(item, settings, f"worker failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
            else:
                free.append(actor)
            if sequences is not None:
                _finished(sequences, item, rec)
            record(rec)
        if not free and not running:
            left = source if sequences is None else ((i, p) for q in sequences for i, p in iter(q.next, None))
            for item, _ in left:  # every worker is gone for good
                record(Record.failed(item, settings, "no Ray worker left to run it"))
            return


def _forward_steps(queue: Any, step: Callable[[str, ProgressEvent], None] | None) -> None:
    """Hand the progress events the workers queued to ``step``, on this thread."""
    if queue is None or step is None:
        return
    n = queue.qsize()
    for key, fields in queue.get_nowait_batch(n) if n else ():
        step(key, ProgressEvent(**fields))


def _ready_frame(sequences: Sequence[FrameSequence]) -> tuple[Item, Any, FrameHistory] | None:
    """(item, payload, history) of the next frame of a sequence with no frame running, or None when every
    unfinished sequence has one running (or all are finished)."""
    for seq in sequences:
        if seq.busy or seq.done:
            continue
        nxt = seq.next()
        if nxt is None:
            seq.done = True
            continue
        seq.busy, seq.current = True, nxt
        return nxt[0], nxt[1], seq.history
    return None


def _finished(sequences: Sequence[FrameSequence], item: Item, rec: Record) -> None:
    for seq in sequences:
        if seq.busy and seq.current[0] is item:
            seq.finished(item, seq.current[1], rec)
            seq.busy = False
            return


__all__ = ["run_on_ray", "size_workers", "connect", "import_ray", "Worker", "MAX_RESTARTS", "MAX_TASK_RETRIES"]
