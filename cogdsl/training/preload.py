"""Every module a training run can need, loaded when it starts.

cogdsl imports some modules where they are first needed (the learning-curve plot at the first evaluation, the
anomaly report at a NaN), to start quickly. A run started from a git checkout that is edited or pulled while it
trains would read those from the new code, beside modules of the old, and stop on a name that moved hours into
the run. Loaded together at the start (a few hundredths of a second: most are imported anyway), a run keeps one
version of the code to its end. A sweep's worker, which runs trial after trial, does the same
(:func:`cogdsl.sweep.trial.loaded_code`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import pkgutil

PACKAGES = ("cogdsl.compiler", "cogdsl.language", "cogdsl.blocks", "cogdsl.ops", "cogdsl.tasks",
            "cogdsl.training", "cogdsl.viz")
"""The packages a run's code lies in, loaded whole by :func:`load_all`."""


@functools.cache
def load_all() -> None:
    """Import every module of :data:`PACKAGES` (once per process); a module whose optional library is not
    installed is left out, as it would fail later too."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, name + "."):
            with contextlib.suppress(ImportError):
                importlib.import_module(module.name)
