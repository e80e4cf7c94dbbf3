"""``cogdsl bench --launches``: how many kernels one time step of each spec launches, counted on the CPU.

A step is counted on each path a run can take, from what is dispatched, so the figures are measured in CI
without a GPU:

* ``eager``: cogdsl's torch backend. Every aten operation that computes launches at least one kernel on a
  GPU; views, reshapes, allocations and other metadata operations launch none. The operations dispatched,
  counted with a :class:`~torch.utils._python_dispatch.TorchDispatchMode`, are the kernels (a lower bound:
  a few aten operations launch several).
* ``triton``: every op forced onto the Triton kernels (on the CPU, Triton's interpreter runs them): the aten
  operations outside the ops, plus the kernels the ops launched (:data:`cogdsl.kernels.library.launched`).
* ``compiled`` (``--compile``): the step through ``torch.compile`` on the torch backend, and
  ``compiled-triton`` on the Triton kernels: the kernels Inductor generated that ran (recorded by the
  profiler: Inductor's C++ kernels on a CPU) and the operations its graphs call outside them (matrix
  products, cogdsl's kernels), counted once per call.

A step is counted at steady state: after warm-up steps (encoders run over a whole input at the first step
only; compiling happens there), one more call of ``model.step``, then (forward+backward) the backward of
the sum of its outputs. Issue 23's targets are on the compiled path on a GPU; the CPU figure is the same
graph with C++ kernels in place of Triton ones.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cogdsl.kernels import library

# Operations that only make a new view of the same storage, or read metadata: no kernel.
NO_KERNEL = frozenset({
    "view", "_unsafe_view", "reshape", "expand", "t", "transpose", "permute", "unsqueeze", "squeeze", "slice",
    "select", "as_strided", "alias", "detach", "split", "split_with_sizes", "unbind", "chunk", "narrow",
    "unfold", "view_as", "expand_as", "diagonal", "lift_fresh", "_to_copy_view", "sym_size", "sym_stride",
    "sym_numel", "is_same_size", "_reshape_alias", "unsafe_split", "movedim", "numpy_T", "flatten",
    "unflatten", "is_nonzero", "_local_scalar_dense", "empty", "empty_like", "new_empty", "empty_strided",
    "new_empty_strided",
})


class CountKernels(TorchDispatchMode):
    """Counts the aten operations dispatched inside it that compute (see :data:`NO_KERNEL`), by name; a cogdsl
    custom op counts as the kernels it launched."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if func.namespace == "cogdsl":
            before = library.launched
            result = func(*args, **(kwargs or {}))
            self.ops[f"cogdsl.{name}"] += library.launched - before
            return result
        if name not in NO_KERNEL:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def count(run: Callable[[], Any]) -> CountKernels:
    """The computing aten operations ``run()`` dispatches."""
    with CountKernels() as counted:
        run()
    return counted


#: The paths a step is counted on, in the table's order.
PATHS = ("eager", "triton", "compiled", "compiled-triton")


@dataclass(frozen=True)
class StepLaunches:
    spec: str
    #: path -> (forward, forward+backward) kernels per step; a path that could not run is absent
    counts: dict[str, tuple[int, int]]
    top: tuple[tuple[str, int], ...]  # the most frequent operations of the eager forward step


def _warm(step: Callable[..., Any], model: torch.nn.Module, x_t: Any, batch: int) -> dict[str, Any]:
    """The state after two steps of ``step`` and one backward: encoders and compilation are behind."""
    state = model.initial_state(batch)
    with torch.no_grad():
        _, state = step(x_t, state, raw=True)
    _backward(step, x_t, state)
    with torch.no_grad():
        _, state = step(x_t, state, raw=True)
    return state


def _backward(step: Callable[..., Any], x_t: Any, state: dict[str, Any]) -> None:
    y, _ = step(x_t, state, raw=True)
    outputs = y.values() if isinstance(y, dict) else (y,)
    sum(o.float().sum() for o in outputs).backward()


def step_launches(model: torch.nn.Module, x_t: Any, batch: int) -> tuple[CountKernels, CountKernels]:
    """The operations of one steady-state step of ``model`` (forward; forward and backward) on ``x_t``, on the
    backend in force."""
    state = _warm(model.step, model, x_t, batch)
    with torch.no_grad():
        forward = count(lambda: model.step(x_t, state, raw=True))
    return forward, count(lambda: _backward(model.step, x_t, state))


def _profiled_kernels(run: Callable[[], Any]) -> int:
    """Kernels ``run()`` launches through compiled graphs: each graph call's direct children that compute
    (Inductor's kernels, extern operations), with a cogdsl op counted as the kernels it launched."""
    from torch.profiler import ProfilerActivity, profile

    before = library.launched
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        run()
    launched = library.launched - before
    total = 0
    for event in profiled.events():
        parent = event.cpu_parent
        if parent is None or not parent.name.startswith("## Call CompiledFxGraph"):
            continue
        name = event.name.removeprefix("aten::")
        if event.name.startswith("cogdsl::") or name in NO_KERNEL:
            continue
        total += 1
    return total + launched


def compiled_step_launches(model: torch.nn.Module, x_t: Any, batch: int) -> tuple[int, int]:
    """Kernels of one steady-state step of ``model`` with its step compiled (``--compile``), on the backend
    in force: (forward, forward+backward)."""
    import torch._inductor.config as inductor

    # Dynamo keeps one cache per code object, shared by every model's step: start each count from an empty
    # one, or a run over many specs meets the recompile limit and falls back to eager.
    torch._dynamo.reset()
    with inductor.patch({"cpp.enable_kernel_profile": True}):
        model.compile_step()  # type: ignore[operator]
        step = model.step_function
        try:
            state = _warm(step, model, x_t, batch)
            with torch.no_grad():
                step(x_t, state, raw=True)  # a recompilation for this state happens here, not under the profiler
                forward = _profiled_kernels(lambda: step(x_t, state, raw=True))
            _backward(step, x_t, state)
            both = _profiled_kernels(lambda: _backward(step, x_t, state))
        finally:
            model.compile_step(backend=None)  # type: ignore[operator]
    return forward, both


def spec_step_input(path: Path, batch: int) -> tuple[torch.nn.Module, Any]:
    """The compiled model of a spec (seed 0) and one step of a batch of its task."""
    import cogdsl
    from cogdsl.training.config import build_task
    from cogdsl.training.loop import config_from_spec, model_inputs

    spec = cogdsl.load(path)
    task = build_task(config_from_spec(spec), spec)
    torch.manual_seed(0)
    model = cogdsl.compile(spec, task)
    model.eval()  # no sampling: the same operations on every run
    data = task.sample(batch, torch.Generator().manual_seed(0))
    inputs = model_inputs(model, data.inputs)
    whole = ("sequence", "image")
    if isinstance(inputs, dict):
        x_t = {name: value if model.input_kinds[name] in whole else value[:, 0] for name, value in inputs.items()}
    else:
        x_t = inputs[:, 0]
    return model, x_t


def _triton_can_run() -> bool:
    """Whether the Triton kernels can run here: a GPU, or (set now, before any kernel is imported) the
    interpreter on the CPU."""
    import os
    import sys

    from cogdsl import kernels

    if not kernels.available():
        return False
    if torch.cuda.is_available() or kernels.interpreting():
        return True
    # triton.jit reads TRITON_INTERPRET when it decorates a kernel: too late once a kernel module is imported.
    if any(name.startswith("cogdsl.kernels.") and name != "cogdsl.kernels.library" for name in sys.modules):
        return False
    os.environ["TRITON_INTERPRET"] = "1"
    return True


def launches(paths: list[Path], batch: int = 4, *, compiled: bool = False) -> list[StepLaunches]:
    """Kernels per time step of every spec in ``paths`` on the eager and Triton paths, and with ``compiled``
    on the compiled paths too."""
    from cogdsl.ops import BackendUnavailableError, use_backend

    triton = _triton_can_run()
    rows = []
    for path in paths:
        counts: dict[str, tuple[int, int]] = {}
        model, x_t = spec_step_input(path, batch)
        with use_backend("torch"):
            forward, both = step_launches(model, x_t, batch)
            counts["eager"] = (forward.total, both.total)
            if compiled:
                counts["compiled"] = compiled_step_launches(model, x_t, batch)
        if triton:
            with use_backend("triton"), contextlib.suppress(BackendUnavailableError):  # an op with no kernel: "-"
                triton_forward, triton_both = step_launches(model, x_t, batch)
                counts["triton"] = (triton_forward.total, triton_both.total)
                if compiled:
                    counts["compiled-triton"] = compiled_step_launches(model, x_t, batch)
        rows.append(StepLaunches(path.name, counts, tuple(forward.ops.most_common(3))))
    return rows


def render_launches(rows: list[StepLaunches]) -> str:
    """The table ``cogdsl bench --launches`` prints: forward / forward+backward kernels on each path counted."""
    paths = [p for p in PATHS if any(p in r.counts for r in rows)]
    header = ("spec", *paths, "most frequent (eager forward)")
    cells = [header] + [(r.spec, *(f"{r.counts[p][0]} / {r.counts[p][1]}" if p in r.counts else "-" for p in paths),
                         ", ".join(f"{name} {n}" for name, n in r.top)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["kernels per time step, forward / forward+backward (docs/kernels.md says how each path is counted)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
