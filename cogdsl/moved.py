"""Where the modules of the flat layout went (issue 22), so that code written against them keeps working.

``import cogdsl.pipeline`` or ``from cogdsl.spec import Spec`` (as the examples once did) gives the module
at its new home, the same object, with a :class:`DeprecationWarning` that names the new path. Nothing in
cogdsl itself imports the old paths; a test keeps it that way.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: old module (under cogdsl.) -> its new home
MOVED: dict[str, str] = {
    "spec": "language.spec", "parse_cog": "language.parse_cog", "parse_yaml": "language.parse_yaml",
    "emit": "language.emit",
    "pipeline": "compiler.pipeline", "graph": "compiler.graph", "validate": "compiler.validate",
    "groups": "compiler.groups", "infer": "compiler.shapes", "lower": "compiler.lower",
    "explain": "compiler.explain", "footprint": "compiler.footprint", "task_sizes": "compiler.task_sizes",
    "named": "blocks.named",
    "checkpoint": "training.checkpoints", "curriculum": "training.curriculum", "predict": "training.predict",
    "train_config": "training.config",
    "viz": "viz.curves", "trace": "viz.trace", "trace_qa": "viz.trace_qa", "trace_seq": "viz.trace_seq",
    "trace_visual": "viz.trace_visual",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.target}; import it from there", DeprecationWarning,
                      stacklevel=3)
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The module is already executed at its new home."""


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds ``cogdsl.<old>`` for every old name in :data:`MOVED`, as its new module. ``cogdsl.viz`` is a
    package now: its old name is served only for its old attributes (``from cogdsl.viz import plot_run``)
    through the package itself, which re-exports the curves module's names."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "cogdsl" or "." in name or name not in MOVED or name == "viz":
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"cogdsl.{MOVED[name]}"))


def install() -> None:
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
