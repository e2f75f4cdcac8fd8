"""``python -m gradfx``: the same command line as ``gradfx``.

This folder installs as the ``gradfx`` namespace package's ``__main__`` (see setup.py); it holds no package of
its own, so ``gradfx`` stays a namespace whose parts are ``gradfx.engine``, ``gradfx.plugins`` and ``gradfx.tui``.
"""

import sys

from gradfx.tui.cli import main

sys.exit(main())
