"""Additive attention: :func:`cogdsl.ops.additive_attention` on every path, on CUDA only.

Bahdanau's score v·tanh(qp + kp_i), the softmax over the S elements and the context Σ_i a_i k_i, float32, at
batch B, 1 head and each sequence length S and width A = D: the forward alone and the forward plus the backward
of a fixed random projection of both outputs (context, weights) with respect to all four inputs. Paths:
``triton`` (the fused kernel), ``eager`` (cogdsl's ``torch`` backend) and ``compiled-reference``
(``torch.compile`` of :func:`cogdsl.ops.attention.additive_attention`). It compares the kernel with the other
paths, and has no Triton row to compare with on a CPU, so there it is not run.

GB/s: the key projection kp (B, H, S, A) and the keys (B, S, D) are read once forward, and read once and their
gradients written once backward: forward B·(H·S·A + S·D)·itemsize, forward + backward 3·B·(H·S·A + S·D)·itemsize
(:func:`additive_attention_bytes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from cogdsl.bench.harness import (
    COMPILED_REFERENCE,
    EAGER,
    TRITON,
    Row,
    Section,
    Timing,
    free,
    op_paths,
    time_paths,
)

if TYPE_CHECKING:
    from cogdsl.bench.command import BenchOptions

ADDITIVE_ATTENTION = "additive attention"
#: Additive attention's sequence lengths S and widths A = D (score units = key width), each with each.
DEFAULT_ATTENTION_LENGTHS = (50, 100, 200, 400)
DEFAULT_ATTENTION_WIDTHS = (64, 256)
#: Additive attention's heads: 1, as in Bahdanau et al. 2015.
ATTENTION_HEADS = 1
ATTENTION_BYTES_NOTE = ("GB/s = bytes that must move / time, the key projection kp (B, H, S, A) and the keys K "
                        "(B, S, D): fwd B·(H·S·A + S·D)·{size} (kp and K read once); fwd+bwd 3·B·(H·S·A + S·D)·{size} "
                        "(adds the backward's reads of kp and K and writes of dkp and dK); qp, v, the context and the "
                        "weights (B·H·(A + D + S)) are not counted")
ATTENTION_NEEDS_GPU = ("additive attention: not run: it compares the Triton kernel with eager PyTorch and "
                       "torch.compile, and needs a CUDA GPU")


def additive_attention_bytes(batch: int, heads: int, length: int, hidden: int, width: int,
                             itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in additive attention: E and 3·E, E = B·(H·S·A + S·D).

    The model: the key projection kp (B, H, S, A) and the keys K (B, S, D) are the arrays of
    size S; the forward must read each once (the context and the weights it writes are
    B·H·(D + S), small next to them). The backward reads kp and K once more and writes dkp and
    dK once. qp, v, the context, the weights and their gradients are not counted.
    """
    elements = batch * (heads * length * hidden + length * width)
    return elements * itemsize, 3 * elements * itemsize


def additive_attention_inputs(batch: int, heads: int, length: int, hidden: int, width: int, device: torch.device,
                              seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`cogdsl.ops.additive_attention` (requiring grad), and projections of its outputs.

    Returns (query_projection (B, H, A), key_projection (B, H, S, A), v (H, A), keys (B, S, D)),
    the projections normal as a linear layer's outputs and v uniform in ±1/sqrt(A) as the block
    initialises it; and (g_context, g_weights), the tensors the backward's loss projects the
    context (B, H, D) and the weights (B, H, S) onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    bound = 1 / math.sqrt(hidden)
    inputs = [
        normal(batch, heads, hidden),
        normal(batch, heads, length, hidden),
        (2 * torch.rand(heads, hidden, generator=generator) - 1) * bound,
        normal(batch, length, width),
    ]
    projections = [normal(batch, heads, width), normal(batch, heads, length)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def additive_attention_paths(device: torch.device, compile: bool) -> dict[str, tuple[Callable[..., Any],
                                                                                          str | None]]:
    """Path name -> (a function with ``additive_attention``'s arguments, the backend forced around it)."""
    from cogdsl import ops
    from cogdsl.ops import attention

    return op_paths(ops.additive_attention, attention.additive_attention, device, compile)


def bench_additive_attention(options: BenchOptions, device: torch.device, *, timing: Timing,
                             progress: Callable[[str], None]) -> list[Row]:
    """One row per (sequence length S, width A = D, path): additive attention's forward and forward+backward times.

    :func:`bench` runs it on CUDA only (it is there to compare the kernel with the other paths);
    called directly it runs the paths that run on ``device``.
    """
    rows: list[Row] = []
    functions = additive_attention_paths(device, options.compile)
    for width in options.attention_widths:
        for length in options.attention_lengths:
            inputs, projections = additive_attention_inputs(options.batch, ATTENTION_HEADS, length, width, width,
                                                            device)
            nbytes = additive_attention_bytes(options.batch, ATTENTION_HEADS, length, width, width,
                                              inputs[0].element_size())
            template = Row(ADDITIVE_ATTENTION, "", options.batch, length, width, 1, *nbytes, hidden=width)
            rows += time_paths(template, functions, inputs, projections,
                                label=f"additive attention, S={length}, A=D={width}", timing=timing, device=device,
                                progress=progress)
            del inputs, projections
            free(device)
    return rows


def _title(first: Row, model: str | None) -> str:
    return (f"additive attention: ops.additive_attention, B={first.batch}, {ATTENTION_HEADS} head, "
            "S elements, A score units, D key width, float32")


def _size_cells(row: Row) -> list[str]:
    """S, A and D."""
    return [str(row.slots), str(row.hidden), str(row.width)]


SECTION = Section(
    name=ADDITIVE_ATTENTION,
    run=bench_additive_attention,
    title=_title,
    times=("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of both outputs "
           "(context, weights) with respect to all 4 inputs"),
    bytes_note=ATTENTION_BYTES_NOTE,
    path_notes={
        TRITON: "the fused Triton kernel (kernels/additive.py)",
        EAGER: "cogdsl's torch backend: cogdsl.ops.attention.additive_attention, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.attention.additive_attention)",
    },
    size_columns=("S", "A", "D"),
    size_cells=_size_cells,
    json_key="attention_bytes_definition",
    needs_gpu=ATTENTION_NEEDS_GPU,
)
