"""Pictures: learning curves (:mod:`~cogdsl.viz.curves`) and ``cogdsl trace`` (:mod:`~cogdsl.viz.trace` for
memories, :mod:`~cogdsl.viz.trace_qa` for memory networks, :mod:`~cogdsl.viz.trace_seq` for attention over a
sequence, :mod:`~cogdsl.viz.trace_visual` for models that look at an image)."""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    """``from cogdsl.viz import plot_run`` (the flat layout's module): the names of :mod:`cogdsl.viz.curves`."""
    if name.startswith("__"):
        raise AttributeError(name)
    curves = importlib.import_module("cogdsl.viz.curves")
    try:
        return getattr(curves, name)
    except AttributeError:
        raise AttributeError(f"module 'cogdsl.viz' has no attribute '{name}'") from None
