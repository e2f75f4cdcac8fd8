"""Errors a user can cause. Each message names the thing that is wrong and how to fix it.

The CLI prints these as one line and exits non-zero; anything else is a bug and shows a traceback.
"""

from __future__ import annotations


class GradfxError(Exception):
    """Base of every error a user can cause (bad input, bad parameter, missing weights...)."""

    exit_code = 2


class ImageError(GradfxError):
    """An image file is missing, empty, corrupt, too large or of an unsupported kind."""


class ParameterError(GradfxError):
    """A parameter value is of the wrong type, out of range, or unknown to the effect."""


class UnknownNameError(GradfxError):
    """No registered effect or model has the requested name."""


class UnknownEffectError(UnknownNameError):
    """No registered effect has the requested name."""


class UnknownModelError(UnknownNameError):
    """No registered model has the requested name."""


class PluginError(GradfxError):
    """A plugin failed to import, to register, or raised inside an effect."""


class WeightsError(GradfxError):
    """Model weights could not be found, downloaded or loaded."""


class DeviceError(GradfxError):
    """The requested device (e.g. a GPU) is not available."""


class RecipeError(GradfxError):
    """A chain recipe is malformed; the message names the step and the parameter."""


class NumericalError(GradfxError):
    """The loss or gradient became non-finite; the last finite image is kept."""


class OutputError(GradfxError):
    """An output cannot be written (it would overwrite an input, or the folder is missing)."""


class JobError(GradfxError):
    """A background job cannot be found, started, cancelled or resumed, or its state folder is unusable."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line of at most 160 characters (for messages that quote a library's)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def suggest(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
