"""``--compile [MODE]`` (``compile=`` in Python): run a model's time step through ``torch.compile``.

A model is a loop over one time step (:meth:`cogdsl.compiler.lower.CompiledModel.step`), so the step is what is
compiled: once per batch shape and mode (training, evaluation), then reused for every sequence length. Every
op of :mod:`cogdsl.ops` is a custom op on the Triton backend and a traceable function on the torch backend, so
the step is one graph, and Inductor fuses the controller's and the interface's arithmetic around the memory
kernels (C++ on a CPU, Triton on a GPU).

Off by default: compiling costs tens of seconds per graph before the first step, and what it gains depends on
the spec and the machine (``cogdsl bench`` measures it, side by side with eager; docs/kernels.md has the
figures). ``reduce-overhead`` adds CUDA graphs on a GPU.
"""

from __future__ import annotations

from typing import Any

from cogdsl.errors import UsageError

#: torch.compile's modes, by the name --compile takes; "default" is torch.compile's default.
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

COMPILE_HELP = ("compile the time step with torch.compile, once, for every sequence length; MODE is one of "
                + ", ".join(COMPILE_MODES) + " (default: default; reduce-overhead adds CUDA graphs on a GPU)")


def compile_mode(value: bool | str | None) -> str | None:
    """The torch.compile mode ``value`` asks for (``"default"`` for True), or None for no compilation.

    Raises:
        UsageError: a mode torch.compile does not have.
    """
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if value not in COMPILE_MODES:
        raise UsageError(f"compile: unknown mode {value!r}; expected one of {', '.join(COMPILE_MODES)}")
    return value


def compile_model(model: Any, value: bool | str | None) -> Any:
    """``model`` with its step compiled as ``value`` asks (see :func:`compile_mode`); unchanged for None/False."""
    mode = compile_mode(value)
    if mode is not None:
        model.compile_step(None if mode == "default" else mode)
    return model
