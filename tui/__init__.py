"""gradfx front ends: the ``gradfx`` command line (``gradfx.tui.cli``) and the Textual app.

Textual and TensorFlow are imported lazily so headless commands start fast.
"""
