"""porter: a plugin-based model-porting framework.

A plugin is a module with functions marked ``@porter.hookimpl``; it is found through the ``porter``
entry-point group::

    [options.entry_points]
    porter =
        mymodel = mymodel_porter.plugin

and implements any of the hooks in :mod:`porter.hookspecs`.
"""
import pluggy

PROJECT_NAME = "porter"
__version__ = "0.1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookspec", "hookimpl"]
