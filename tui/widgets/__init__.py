"""The main screen's panels, one module each kind: the lists of the left column (``lists.py``: effect
browser, chain), the parameter form (``param_form.py``, its text fields in ``fields.py``), the run panel
(``run_panel.py``) and the preview (``preview_panel.py``). A new panel is a module here, exported below, and a
few lines in ``GradfxApp.compose`` and ``app.tcss``."""

from .fields import ImageField, TextField
from .lists import ChainView, EffectBrowser
from .param_form import ParamForm
from .preview_panel import Preview
from .run_panel import RunPanel

__all__ = ["ChainView", "EffectBrowser", "ImageField", "ParamForm", "Preview", "RunPanel", "TextField"]
