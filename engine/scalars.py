"""Text and numbers to a parameter's scalar values and back: the conversions :class:`.params.Param` applies to
``-p`` text, TOML values and Python values alike (``"1e3"`` is the integer 1000, ``"yes"`` true), and the
shortest text that parses back to a float exactly."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt", "to_bool", "to_float", "to_int"]

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def fmt(x: float) -> str:
    """Shortest text that parses back to exactly ``x`` (``0.01``, ``1e-05``, ``2``)."""
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)
    return str(x)


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            try:
                f = to_float(text)  # accepts "1e3"
            except ValueError:  # "abc": not an integer, as "1.5" is not (not "not a number")
                f = math.nan
            if not f.is_integer():
                raise ValueError("not an integer") from None
            return int(f)
    raise ValueError("not an integer")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:  # not float()'s "could not convert string to float: 'x'"
            raise ValueError("not a number") from None
    else:
        raise ValueError("not a number")
    if not math.isfinite(out):
        raise ValueError("not finite")
    return out


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError("not true or false")
