"""``cogdsl bench --launches``: how many kernels one time step of each spec launches, counted on the CPU.

Every aten operation that computes something launches at least one kernel on a GPU in eager PyTorch; views,
reshapes and other metadata operations launch none. So the number of such operations dispatched in one
time step, counted with a :class:`~torch.utils._python_dispatch.TorchDispatchMode`, is the eager path's
kernel count per step, measured without a GPU (a lower bound: a few aten operations launch several).

A step is counted at steady state: after one step of warm-up (encoders run over a whole input at the first
step only), one more call of ``model.step``, then (forward+backward) the backward of the sum of its
outputs. The figure is issue 23's baseline: what compiling the whole step must bring down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Operations that only make a new view of the same storage, or read metadata: no kernel.
NO_KERNEL = frozenset({
    "view", "_unsafe_view", "reshape", "expand", "t", "transpose", "permute", "unsqueeze", "squeeze", "slice",
    "select", "as_strided", "alias", "detach", "split", "split_with_sizes", "unbind", "chunk", "narrow",
    "unfold", "view_as", "expand_as", "diagonal", "lift_fresh", "_to_copy_view", "sym_size", "sym_stride",
    "sym_numel", "is_same_size", "_reshape_alias", "unsafe_split", "movedim", "numpy_T", "flatten",
    "unflatten", "is_nonzero", "_local_scalar_dense",
})


class CountKernels(TorchDispatchMode):
    """Counts the aten operations dispatched inside it that compute (see :data:`NO_KERNEL`), by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
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


@dataclass(frozen=True)
class StepLaunches:
    spec: str
    forward: int
    forward_backward: int
    top: tuple[tuple[str, int], ...]  # the most frequent operations of the forward step


def step_launches(model: torch.nn.Module, x_t: Any, batch: int) -> tuple[CountKernels, CountKernels]:
    """The operations of one steady-state step of ``model`` (forward; forward and backward) on ``x_t``."""
    state = model.initial_state(batch)
    with torch.no_grad():
        _, state = model.step(x_t, state, raw=True)  # warm-up: encoders and whole inputs enter the state
    with torch.no_grad():
        forward = count(lambda: model.step(x_t, state, raw=True))

    def forward_backward() -> None:
        y, _ = model.step(x_t, state, raw=True)
        outputs = y.values() if isinstance(y, dict) else (y,)
        sum(o.float().sum() for o in outputs).backward()

    return forward, count(forward_backward)


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


def launches(paths: list[Path], batch: int = 4) -> list[StepLaunches]:
    """Kernels per time step of every spec in ``paths``, on the eager path."""
    rows = []
    for path in paths:
        model, x_t = spec_step_input(path, batch)
        forward, both = step_launches(model, x_t, batch)
        rows.append(StepLaunches(path.name, forward.total, both.total, tuple(forward.ops.most_common(3))))
    return rows


def render_launches(rows: list[StepLaunches]) -> str:
    """The table ``cogdsl bench --launches`` prints."""
    header = ("spec", "forward", "forward+backward", "most frequent (forward)")
    cells = [header] + [(r.spec, str(r.forward), str(r.forward_backward),
                         ", ".join(f"{name} {n}" for name, n in r.top)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["kernels per time step, eager PyTorch (computing aten operations dispatched; views excluded)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
