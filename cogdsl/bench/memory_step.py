"""The memory step: :func:`cogdsl.ops.ntm_memory_step` on every path.

1 read and 1 write head, shift offsets -1..1, float32, at batch B, width W and each slot count N: the forward
alone (under ``torch.no_grad``) and the forward plus the backward of a fixed random projection of all three
outputs, ``(weights·gw).sum() + (reads·gr).sum() + (new_memory·gm).sum()``, with respect to every input.
Paths: ``triton`` (CUDA only), ``triton-one-program`` (the same unsplit, CUDA only), ``eager`` (cogdsl's
``torch`` backend, backward passes written by hand),
``eager-reference`` (the plain autograd equations, :mod:`cogdsl.ops.ntm`) and ``compiled-reference``
(``torch.compile`` of the reference).

GB/s: the memory read once and written once, forward 2·B·N·W·itemsize (M read, M' written), forward + backward
5·B·N·W·itemsize (adding the backward's reads of M and dM' and its write of dM).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cogdsl.bench.harness import (
    COMPILED_REFERENCE,
    EAGER,
    EAGER_REFERENCE,
    TRITON,
    Row,
    Section,
    Timing,
    free,
    time_paths,
)

if TYPE_CHECKING:
    from cogdsl.bench.command import BenchOptions

MEMORY_STEP = "memory step"
#: The Triton step with one program per batch element, whatever the memory's size (the "triton" row splits the
#: slots of a large memory over several programs: kernels/memory_split.py); side by side, they say if it pays.
TRITON_ONE_PROGRAM = "triton-one-program"
DEFAULT_SLOTS = (128, 4096, 65536)
#: The memory step's heads: 1 read and 1 write head with shift offsets -1..1, as the NTM copy model has.
HEADS, WRITE_HEADS, SHIFTS = 2, 1, 3
BYTES_NOTE = ("GB/s = bytes that must move / time, the memory read once and written once: fwd 2·B·N·W·{size} "
              "(M read, M' written); fwd+bwd 5·B·N·W·{size} (adds the backward's read of M and dM' and write of dM)")


def memory_step_bytes(batch: int, slots: int, width: int, itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move: 2·B·N·W and 5·B·N·W elements."""
    elements = batch * slots * width
    return 2 * elements * itemsize, 5 * elements * itemsize


def memory_step_inputs(batch: int, slots: int, width: int, device: torch.device,
                       seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of ``ntm_memory_step`` in their ranges (requiring grad), and projections of its outputs.

    Returns (memory, previous, keys, strengths, gate, shift_weights, gamma, erase, add) and
    (gw, gr, gm), the tensors the backward's loss projects (weights, reads, new memory) onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    b, n, w, h, hw = batch, slots, width, HEADS, WRITE_HEADS
    inputs = [
        normal(b, n, w),  # memory
        torch.softmax(normal(b, h, n), -1),  # previous weights: distributions over slots
        normal(b, h, w),  # keys
        F.softplus(normal(b, h)) + 0.1,  # strengths > 0
        torch.sigmoid(normal(b, h)),  # gates in [0, 1]
        torch.softmax(normal(b, h, SHIFTS), -1),  # shift weights
        1 + F.softplus(normal(b, h)),  # gamma >= 1
        torch.sigmoid(normal(b, hw, w)),  # erase in [0, 1]
        normal(b, hw, w),  # add
    ]
    projections = [normal(b, h, n), normal(b, h - hw, w), normal(b, n, w)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def _memory_step_functions(device: torch.device, compile: bool) -> dict[str, Callable[..., Any]]:
    """Path name -> a function with ``ntm_memory_step``'s arguments, for each path that runs here."""
    from cogdsl import ops
    from cogdsl.ops import ntm

    def on_backend(name: str) -> Callable[..., Any]:
        def step(*args: Tensor) -> Any:
            with ops.use_backend(name):
                return ops.ntm_memory_step(*args)
        return step

    def one_program(*args: Tensor) -> Any:
        from cogdsl import kernels

        with ops.use_backend("triton"), kernels.splitting(1):
            return ops.ntm_memory_step(*args)

    functions: dict[str, Callable[..., Any]] = {}
    if device.type == "cuda":
        functions[TRITON] = on_backend("triton")
        functions[TRITON_ONE_PROGRAM] = one_program
    functions[EAGER] = on_backend("torch")
    functions[EAGER_REFERENCE] = ntm.ntm_memory_step
    if compile:
        functions[COMPILED_REFERENCE] = ntm.ntm_memory_step  # compiled in time_step, one size at a time
    return functions


def bench_memory_step(options: BenchOptions, device: torch.device, *, timing: Timing,
                      progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count, path): the memory step's forward and forward+backward times."""
    rows: list[Row] = []
    functions = _memory_step_functions(device, options.compile)
    for slots in options.slots:
        inputs, projections = memory_step_inputs(options.batch, slots, options.width, device)
        nbytes = memory_step_bytes(options.batch, slots, options.width, inputs[0].element_size())
        template = Row(MEMORY_STEP, "", options.batch, slots, options.width, 1, *nbytes)
        rows += time_paths(template, {path: (function, None) for path, function in functions.items()}, inputs,
                           projections, label=f"memory step, N={slots}", timing=timing, device=device,
                           progress=progress)
        del inputs, projections
        free(device)
    return rows


def _title(first: Row, model: str | None) -> str:
    return (f"memory step: ntm_memory_step, B={first.batch}, W={first.width}, {HEADS - WRITE_HEADS} read + "
            f"{WRITE_HEADS} write head, {SHIFTS} shifts, float32")


SECTION = Section(
    name=MEMORY_STEP,
    run=bench_memory_step,
    title=_title,
    times="ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of all 3 outputs",
    bytes_note=BYTES_NOTE,
    path_notes={
        TRITON: "the fused Triton kernels (slots split over several programs where the memory is large)",
        TRITON_ONE_PROGRAM: "the fused Triton kernel, one program per batch element",
        EAGER: "cogdsl's torch backend (hand-written backward)",
        EAGER_REFERENCE: "cogdsl.ops.ntm.ntm_memory_step, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.ntm.ntm_memory_step)",
    },
    json_key="bytes_definition",
)
