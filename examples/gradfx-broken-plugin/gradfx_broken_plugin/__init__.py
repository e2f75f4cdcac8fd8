"""A deliberately broken gradfx plugin: importing it raises.

gradfx must keep working with this installed: ``gradfx list`` and ``gradfx run`` as before, and ``gradfx
plugins`` shows plugin 'broken' as failed with this error.
"""

raise ImportError("gradfx-broken-plugin is broken on purpose (a missing dependency, say)")
