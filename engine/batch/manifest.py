"""``OUTDIR/manifest.jsonl``: one record per item as it finishes, read back so a rerun skips what is done."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .items import Item

#: the manifest's file name inside OUTDIR
MANIFEST = "manifest.jsonl"

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
        """Refuse a batch whose settings differ from those of an item done here (the folder would mix the two);
        items that failed are simply retried with the new settings (the fix a failure names is often a
        setting: --size, say)."""
        other = {r.get("settings") for r in self.records.values() if r.get("status") == "done"} - {settings}
        if other:
            raise OutputError(f"{self.path} records items done with other settings (effect, parameters, model, "
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
