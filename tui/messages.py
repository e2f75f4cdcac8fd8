"""What the terminal UI announces: every message the app posts to itself, so tests and embedders can follow
a run, a save or a recipe (``GradfxApp.RunFinished`` and so on are these classes). Their handlers are named
``on_gradfx_app_<name>``, as when they were defined inside the app class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from textual.message import Message

from gradfx.engine.progress import ProgressEvent
from gradfx.engine.running import api

from .chain_model import ChainStep


class RunStarted(Message, namespace="gradfx_app"):
    def __init__(self, steps: list[tuple[str, dict[str, Any], str | None]]) -> None:
        super().__init__()
        self.steps = steps


class RunProgress(Message, namespace="gradfx_app"):
    """A progress event, and the losses so far of its chain step."""

    def __init__(self, event: ProgressEvent, losses: list[float]) -> None:
        super().__init__()
        self.event, self.losses = event, losses


class PreviewReady(Message, namespace="gradfx_app"):
    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.image = image


class RunFinished(Message, namespace="gradfx_app"):
    def __init__(self, result: api.Result, cancelled: bool) -> None:
        super().__init__()
        self.result, self.cancelled = result, cancelled


class RunFailed(Message, namespace="gradfx_app"):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class OutputSaved(Message, namespace="gradfx_app"):
    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths


class RecipeLoaded(Message, namespace="gradfx_app"):
    def __init__(self, path: Path, steps: list[ChainStep]) -> None:
        super().__init__()
        self.path, self.steps = path, steps


class DeviceFound(Message, namespace="gradfx_app"):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class FollowsFound(Message, namespace="gradfx_app"):
    """Which effects' default models follow ``weights`` to another model here (effect name -> model)."""

    def __init__(self, weights: str, follows: dict[str, str]) -> None:
        super().__init__()
        self.weights, self.follows = weights, follows


class RecipeSaved(Message, namespace="gradfx_app"):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class JobAttached(Message, namespace="gradfx_app"):
    """The app follows a background job (started with ctrl+r, reattached at start or from the jobs panel)."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


class JobFinished(Message, namespace="gradfx_app"):
    """The followed job ended having written ``outputs`` (after the ``RunFinished`` with its image)."""

    def __init__(self, job_id: str, status: str, outputs: list[str], error: str | None) -> None:
        super().__init__()
        self.job_id, self.status, self.outputs, self.error = job_id, status, outputs, error
