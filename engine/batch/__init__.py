"""Batches: one effect or recipe over many images and video frames, resumable, locally or on Ray.

:mod:`.items` finds the items and their seeds, :mod:`.job` plans the work once and runs one item,
:mod:`.manifest` records each item as it finishes, :mod:`.runner` runs them all locally (:func:`run_batch`)
and :mod:`.ray_runner` on a Ray cluster. The whole contract (items, outputs, seeds, manifest, sequences) is
in :mod:`.runner`'s docstring. Nothing here imports TensorFlow until an item runs.
"""

from __future__ import annotations

from .items import IMAGE_SUFFIXES, Item, VideoJob, discover, item_seed, payloads
from .job import Job, make_job, run_item
from .manifest import MANIFEST, Manifest, Record
from .runner import BatchEvent, BatchSummary, check_batch, run_batch

__all__ = ["IMAGE_SUFFIXES", "MANIFEST", "BatchEvent", "BatchSummary", "Item", "Job", "Manifest", "Record",
           "VideoJob", "check_batch", "discover", "item_seed", "make_job", "payloads", "run_batch", "run_item"]
