"""TensorFlow and Keras for the engine modules that use them from their first line: ``from ..models.tf import
tf`` imports them with their start-up log (oneDNN, CUDA stubs, CPU features) kept off the terminal
(:func:`.device.quiet_tensorflow`), whichever engine module a program imports first (a plugin that imports
``gradfx.engine.objectives`` printed six lines of it). ``gradfx --debug`` (``GRADFX_DEBUG=1``) shows them."""

from __future__ import annotations

from .device import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402 - after quiet_tensorflow, which is the point of this module
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
