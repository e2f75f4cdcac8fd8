"""Checkpoints: a run's description and its optimisation state, written atomically so a run can resume.

A checkpoint folder holds ``run.json`` (effect, resolved parameters, model, weights, seed, device, where the
output goes), ``input.npz`` (the exact input pixels), ``previous.npz`` (a video frame's previous frame, its
input and output, for ``temporal=flow``: a resumed frame follows the same warped previous output), ``images.npz``
(the pixels of image parameters the caller passed in memory, which ``run.json`` records as
``"<array 64x48 #1a2b3c4d>"``), ``state-K.npz`` (the latest state of the K-th solve of
the run: stage, step, image variables, optimiser slots, loss history) and ``solution-K.npz`` for each solve
that finished. A chain's checkpoint keeps each step's solver state in a folder of its own, ``stepNN/``
(:meth:`Checkpoint.for_step`): a resumed chain takes the solutions of the steps that finished, so it repeats
none of their optimisation and hands the same 8-bit images on. Randomness in the engine is a pure function of
``(seed, step)``, so on the CPU a resumed run writes the same bytes as one that was never interrupted. In a
folder only its owner may enter (a background job's) every file is written private (0600).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GradfxError, OutputError, one_line
from ..images import atomic
from ..images.load import LoadedImage

if TYPE_CHECKING:
    from ..temporal.frames import Previous
    from .plan import Plan

RUN_FILE = "run.json"
INPUT_FILE = "input.npz"
PREVIOUS_FILE = "previous.npz"
#: steps between saves unless a run says (``--checkpoint-every``)
EVERY = 10
IMAGES_FILE = "images.npz"
#: what run.json must hold for a resume
SPEC_KEYS = ("effect", "params", "model", "weights", "seed")


def _read_npz(path: Path, read: Any) -> Any:
    """``read(data)`` on the arrays of a checkpoint file; a damaged file is a one-line GradfxError."""
    try:
        with np.load(path) as data:
            return read(data)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        raise GradfxError(f"checkpoint file {str(path)!r} is damaged or truncated; start the run again") from None


def held_images(params: Mapping[str, Any]) -> dict[str, LoadedImage]:
    """The images a step's parameters hold in memory (arrays, PIL images the caller passed), by key: the
    parameter's name, or ``name.i`` for the i-th image of an image list."""
    held: dict[str, LoadedImage] = {}
    for name, value in params.items():
        if isinstance(value, LoadedImage):
            held[name] = value
        elif isinstance(value, tuple):
            held.update({f"{name}.{i}": v for i, v in enumerate(value) if isinstance(v, LoadedImage)})
    return held


def _put_back(params: dict[str, Any], data: Any) -> None:
    """Replace, in a checkpoint's recorded parameters, each image held in memory (recorded as
    ``"<array 64x48 #1a2b3c4d>"``) by its pixels from ``images.npz``, so the resumed run reads the same image
    (and its report records it alike)."""
    for key in sorted({name.rsplit("__", 1)[0] for name in data.files}):
        name, _, index = key.partition(".")
        value = params.get(name)
        slot = value[int(index)] if index and isinstance(value, list) else value
        kind = str(slot)[1:].rsplit(" ", 2)[0] if isinstance(slot, str) else "array"
        image = LoadedImage(data[f"{key}__rgb"], data[f"{key}__alpha"] if f"{key}__alpha" in data.files else None,
                            f"<{kind}>", "RGB")
        if index and isinstance(value, list):
            value[int(index)] = image
        else:
            params[name] = image


class Checkpoint:
    """One checkpoint folder; see the module docstring."""

    def __init__(self, folder: str | os.PathLike, every: int = EVERY) -> None:
        self.folder = Path(folder)
        self.every = int(every)
        if self.every < 1:
            raise GradfxError(f"checkpoint interval (--checkpoint-every N) {every!r} must be at least 1 step; "
                              "e.g. --checkpoint-every 10")

    # --- the run's description -------------------------------------------------------------------------------
    def start(self, spec: dict[str, Any], image: LoadedImage | None, previous: Previous | None = None,
              held: Mapping[str, LoadedImage] | None = None) -> None:
        """Begin a fresh checkpoint: the run description, input, previous frame and the images parameters
        hold in memory (``held``, by :func:`held_images`' keys), if any; stale state from an older run is
        removed."""
        atomic.output_folder(self.folder, "checkpoint folder")
        for old in list(self.folder.glob("state-*.npz")) + list(self.folder.glob("solution-*.npz")):
            old.unlink()
        (self.folder / PREVIOUS_FILE).unlink(missing_ok=True)
        (self.folder / IMAGES_FILE).unlink(missing_ok=True)
        if held:
            self._write_npz(self.folder / IMAGES_FILE, {
                f"{key}__{what}": getattr(im, what) for key, im in held.items() for what in ("rgb", "alpha")
                if getattr(im, what) is not None})
        if previous is not None:
            self._write_npz(self.folder / PREVIOUS_FILE, {
                f"{what}_{k}": getattr(frame, what) for k, frame in enumerate(previous.frames())
                for what in ("input", "output")})
        text = json.dumps({**spec, "checkpoint_every": self.every, "done": False}, indent=2)
        atomic.atomic_write(self.folder / RUN_FILE, lambda tmp: Path(tmp).write_text(text), mode=self._mode())
        if image is not None:
            arrays = {"rgb": image.rgb}
            if image.alpha is not None:
                arrays["alpha"] = image.alpha
            self._write_npz(self.folder / INPUT_FILE, arrays)

    @classmethod
    def for_plan(cls, plan: Plan, folder: str | os.PathLike, every: int = EVERY, *, resume: bool = False,
                 info: dict[str, Any] | None = None, previous: Previous | None = None) -> Checkpoint:
        """The checkpoint of a one-effect plan; unless ``resume``, started afresh with the plan's description
        (``info`` adds fields to it: the CLI records the output path there) and the ``previous`` frame the run
        follows."""
        ckpt = cls(folder, every)
        if not resume:
            (step,) = plan.steps
            ckpt.start({"effect": step.effect.name, "params": step.effect.schema.to_json(step.params), "model": step.model,
                        "weights": str(plan.weights), "seed": plan.seed, "device": plan.device, **(info or {})},
                       plan.image, previous, held_images(step.params))
        return ckpt

    @classmethod
    def open(cls, folder: str | os.PathLike) -> tuple[Checkpoint, dict[str, Any], LoadedImage | None]:
        """An existing checkpoint, its run description and its input image."""
        folder = Path(folder)
        spec = cls.read_spec(folder)
        image = None
        if (folder / INPUT_FILE).is_file():
            image = _read_npz(folder / INPUT_FILE, lambda data: LoadedImage(
                data["rgb"], data["alpha"] if "alpha" in data else None, str(folder / INPUT_FILE), "RGB"))
        if (folder / IMAGES_FILE).is_file() and isinstance(spec.get("params"), dict):
            _read_npz(folder / IMAGES_FILE, lambda data: _put_back(spec["params"], data))
        return cls(folder, spec.get("checkpoint_every", 10)), spec, image

    def load_previous(self) -> Previous | None:
        """The previous video frame the checkpointed run follows (``temporal=flow``), or None."""
        from ..temporal.frames import Previous

        path = self.folder / PREVIOUS_FILE
        if not path.is_file():
            return None
        return _read_npz(path, lambda data: Previous.chain([
            Previous(data[f"input_{k}"], data[f"output_{k}"]) for k in range(len(data.files) // 2)]))

    @staticmethod
    def read_spec(folder: str | os.PathLike) -> dict[str, Any]:
        """A checkpoint's run description (``run.json``), without its input image; errors say what is wrong."""
        folder = Path(folder)
        run_file = folder / RUN_FILE
        if not run_file.is_file():
            raise GradfxError(f"{str(folder)!r} is not a gradfx checkpoint (no {RUN_FILE}); start one with "
                              f"'gradfx run ... --checkpoint {folder}'")
        try:
            spec = json.loads(run_file.read_text())
        except (OSError, ValueError) as exc:
            raise GradfxError(f"checkpoint {str(run_file)!r} is unreadable ({exc}); start the run again") from None
        missing = [key for key in SPEC_KEYS if key not in spec] if isinstance(spec, dict) else list(SPEC_KEYS)
        if missing:
            raise GradfxError(f"checkpoint {str(run_file)!r} is damaged (no {', '.join(missing)}); start the run "
                              "again")
        return spec

    def for_step(self, index: int) -> Checkpoint:
        """The solver state of a chain's step ``index`` (1-based), in a folder of its own, ``stepNN/`` (made
        with its first file; private if this one is), with this checkpoint's interval. A chain resumes by
        executing again with the same checkpoint."""
        return type(self)(self.folder / f"step{index:02d}", self.every)

    def mark_done(self) -> None:
        spec = json.loads((self.folder / RUN_FILE).read_text())
        spec["done"] = True
        text = json.dumps(spec, indent=2)
        atomic.atomic_write(self.folder / RUN_FILE, lambda tmp: Path(tmp).write_text(text), mode=self._mode())

    # --- solver state ----------------------------------------------------------------------------------------
    def save_state(self, index: int, state: dict[str, Any]) -> None:
        arrays: dict[str, Any] = {
            "stage": np.int64(state["stage"]),
            "step": np.int64(state["step"]),
            "losses": np.asarray(state["losses"], np.float64),
            "step_seconds": np.asarray(state["step_seconds"], np.float64),
        }
        for i, v in enumerate(state["variables"]):
            arrays[f"var_{i}"] = v
        for slot, values in state["optimizer"].items():
            for i, v in enumerate(values):
                arrays[f"opt_{slot}_{i}"] = v
        self._write_npz(self.folder / f"state-{index}.npz", arrays)

    def load_state(self, index: int) -> dict[str, Any] | None:
        path = self.folder / f"state-{index}.npz"
        if not path.is_file():
            return None
        return _read_npz(path, self._state_from)

    @staticmethod
    def _state_from(data: Any) -> dict[str, Any]:
        keys = list(data.keys())
        variables = [data[f"var_{i}"] for i in range(sum(k.startswith("var_") for k in keys))]
        optimizer: dict[str, list] = {}
        for key in sorted((k for k in keys if k.startswith("opt_")), key=lambda k: int(k.rsplit("_", 1)[1])):
            slot = key[4:].rsplit("_", 1)[0]
            optimizer.setdefault(slot, []).append(data[key])
        return {"stage": int(data["stage"]), "step": int(data["step"]), "variables": variables,
                "optimizer": optimizer, "losses": data["losses"].tolist(),
                "step_seconds": data["step_seconds"].tolist()}

    def save_solution(self, index: int, solution: Any) -> None:
        self._write_npz(self.folder / f"solution-{index}.npz", {
            "image": solution.image,
            "losses": np.asarray(solution.losses, np.float64),
            "step_seconds": np.asarray(solution.step_seconds, np.float64),
            "sizes": np.asarray(solution.sizes, np.int64),
            "status": np.str_(solution.status),
            "message": np.str_(solution.message),
            "evaluations": np.int64(solution.evaluations),
        })
        (self.folder / f"state-{index}.npz").unlink(missing_ok=True)

    def load_solution(self, index: int) -> Any | None:
        from ..optimise.solver import Solution

        path = self.folder / f"solution-{index}.npz"
        if not path.is_file():
            return None
        return _read_npz(path, lambda data: Solution(
            data["image"], data["losses"].tolist(), data["step_seconds"].tolist(),
            [tuple(s) for s in data["sizes"].tolist()], str(data["status"]), str(data["message"]),
            int(data["evaluations"])))

    def _mode(self) -> int | None:
        """0o600 in a folder only its owner may enter (a background job's state is private: the folder's
        mode, or its parent's before it exists, says so), else None: the usual mode of a new file."""
        for folder in (self.folder, self.folder.parent):
            try:
                return 0o600 if folder.stat().st_mode & 0o077 == 0 else None
            except OSError:
                continue
        return None

    def _write_npz(self, path: Path, arrays: dict[str, Any]) -> None:
        def write(tmp: Any) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        mode = self._mode()
        try:  # a chain step's folder is made with its first file
            self.folder.mkdir(mode=0o700 if mode is not None else 0o777, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"checkpoint folder {str(self.folder)!r} cannot be created ({one_line(exc)}); check "
                              "the folder and free disk space") from None
        atomic.atomic_write(path, write, mode=mode)
