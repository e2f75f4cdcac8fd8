"""Paths as the TUI shows them."""

from __future__ import annotations

from pathlib import Path


def short_path(path: str | Path | None, width: int = 40) -> str:
    """``path`` relative to the working folder when it is inside it, at most ``width`` characters (cut at the
    start, where "…" says so: the name is at the end)."""
    if path is None:
        return "none"
    resolved = Path(path).resolve()  # normalised: not /tmp/x/../style.png
    try:
        text = str(resolved.relative_to(Path.cwd()))
    except ValueError:
        text = str(resolved)
    return text if len(text) <= width else "…" + text[-(width - 1):]
