"""cogdsl: a declarative language for memory-augmented and attention networks.

    import cogdsl
    spec = cogdsl.load("specs/ntm_copy.yaml")     # or .cog; raises cogdsl.SpecError
    model = cogdsl.compile(spec)                  # a torch.nn.Module
    y = model(x)                                  # x (B, T, input size) -> y (B, T, output size)
"""

from __future__ import annotations

from pathlib import Path

from cogdsl.errors import CheckpointError, CogdslError, ShapeError, SpecError, SpecSyntaxError, UsageError
from cogdsl.lower import CompiledModel
from cogdsl.pipeline import compile_spec, read_spec_file
from cogdsl.spec import Spec

__version__ = "0.1.0"


def load(path: str | Path) -> Spec:
    """Read a spec file (.yaml, .yml or .cog) into the IR; raises SpecError with every problem found."""
    spec = read_spec_file(path)
    from cogdsl.pipeline import check

    check(spec)
    return spec


def compile(spec: Spec | str | Path) -> CompiledModel:
    """Compile a spec (or a path to one) into a :class:`CompiledModel`."""
    return compile_spec(spec)


__all__ = [
    "CheckpointError",
    "CogdslError",
    "CompiledModel",
    "ShapeError",
    "Spec",
    "SpecError",
    "SpecSyntaxError",
    "UsageError",
    "__version__",
    "compile",
    "load",
]
