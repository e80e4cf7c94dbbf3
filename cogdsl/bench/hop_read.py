"""A memory network hop's read: :func:`cogdsl.ops.hop_read` on every path, on CUDA only.

The scores m_i·u, the softmax over a story's kept slots and the read Σ_i p_i c_i (MemN2N), float32, at batch B,
each slot count N and key width D = value width W: query (B, D), keys (B, N, D), values (B, N, W) and a mask
(B, N) that keeps a prefix of each row, stories of 1..N sentences, as
:class:`cogdsl.blocks.memnet.SentenceMemory` stores them; the forward alone and the forward plus the backward
of a fixed random projection of both outputs (read, weights) with respect to the query, the keys and the
values. Paths: ``triton`` (the fused kernel), ``eager`` (cogdsl's ``torch`` backend) and
``compiled-reference`` (``torch.compile`` of :func:`cogdsl.ops.attention.hop_read`). CUDA only, as additive
attention, for the same reason.

GB/s: the keys and the values are read once forward, and read once and their gradients written once backward:
forward B·N·(D + W)·itemsize, forward + backward 3·B·N·(D + W)·itemsize (:func:`hop_read_bytes`).
"""

from __future__ import annotations

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

HOP_READ = "hop read"
#: The hop read's slot counts N (MemN2N keeps a story's last 50 sentences; the others are longer memories) and
#: widths D = W (MemN2N's embedding d: 20 on bAbI's 1k training set, 50 on 10k), each with each.
DEFAULT_HOP_SLOTS = (50, 500, 5000, 50000)
DEFAULT_HOP_WIDTHS = (20, 50)
HOP_BYTES_NOTE = ("GB/s = bytes that must move / time, the keys (B, N, D) and the values (B, N, W): fwd "
                  "B·N·(D + W)·{size} (keys and values read once); fwd+bwd 3·B·N·(D + W)·{size} (adds the "
                  "backward's reads of the keys and values and writes of their gradients); the query, the read, "
                  "the mask and the weights (B·(D + W) and B·N) are not counted")
HOP_NEEDS_GPU = ("hop read: not run: it compares the Triton kernel with eager PyTorch and torch.compile, and needs "
                 "a CUDA GPU")


def hop_read_bytes(batch: int, slots: int, key_width: int, value_width: int, itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in a hop's read: E and 3·E, E = B·N·(D + W).

    The model: the keys (B, N, D) and the values (B, N, W) are the arrays of size N·width; the
    forward must read each once (the scores and the read need every key and every value, and
    the weights it writes are B·N, the read B·W, small next to them). The backward reads the
    keys and the values once more and writes their gradients once. The query (B, D), the mask
    (B, N), the read, the weights and their gradients are not counted.
    """
    elements = batch * slots * (key_width + value_width)
    return elements * itemsize, 3 * elements * itemsize


def hop_read_inputs(batch: int, slots: int, key_width: int, value_width: int, device: torch.device,
                    seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`cogdsl.ops.hop_read` as a MemN2N hop gets them, and projections of its outputs.

    Returns (query (B, D), keys (B, N, D), values (B, N, W), mask (B, N) bool): the query, keys and
    values normal and requiring grad; the mask as :class:`cogdsl.blocks.memnet.SentenceMemory`
    stores a batch of stories, the kept slots first: row b keeps its first n_b slots, n_b drawn
    uniformly from 1..N (no story is empty), and the longest story fills all N (the block trims
    the slots to the longest story). The slots not kept hold random keys and values too (the
    block's are zero; no path reads them for its result). And (g_read (B, W), g_weights (B, N)),
    the tensors the backward's loss projects the read and the weights onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    differentiable = [normal(batch, key_width), normal(batch, slots, key_width), normal(batch, slots, value_width)]
    lengths = torch.randint(1, slots + 1, (batch,), generator=generator)
    lengths[lengths.argmax()] = slots
    mask = torch.arange(slots) < lengths[:, None]
    projections = [normal(batch, value_width), normal(batch, slots)]
    return ([*(t.to(device).requires_grad_(True) for t in differentiable), mask.to(device)],
            [t.to(device) for t in projections])


def hop_read_paths(device: torch.device, compile: bool) -> dict[str, tuple[Callable[..., Any], str | None]]:
    """Path name -> (a function with ``hop_read``'s arguments, the backend forced around it)."""
    from cogdsl import ops
    from cogdsl.ops import attention

    return op_paths(ops.hop_read, attention.hop_read, device, compile)


def bench_hop_read(options: BenchOptions, device: torch.device, *, timing: Timing,
                   progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count N, width D = W, path): a memory network hop's read, forward and forward+backward times.

    :func:`bench` runs it on CUDA only (it is there to compare the kernel with the other paths);
    called directly it runs the paths that run on ``device``.
    """
    rows: list[Row] = []
    functions = hop_read_paths(device, options.compile)
    for width in options.hop_widths:
        for slots in options.hop_slots:
            inputs, projections = hop_read_inputs(options.batch, slots, width, width, device)
            nbytes = hop_read_bytes(options.batch, slots, width, width, inputs[0].element_size())
            template = Row(HOP_READ, "", options.batch, slots, width, 1, *nbytes, key_width=width)
            rows += time_paths(template, functions, inputs, projections, label=f"hop read, N={slots}, D=W={width}",
                                timing=timing, device=device, progress=progress)
            del inputs, projections
            free(device)
    return rows


def _title(first: Row, model: str | None) -> str:
    return (f"hop read: ops.hop_read, B={first.batch}, N slots (row b keeps its first 1..N, one row all N), "
            "D key width, W value width, float32")


def _size_cells(row: Row) -> list[str]:
    """N, D and W."""
    return [str(row.slots), str(row.key_width), str(row.width)]


SECTION = Section(
    name=HOP_READ,
    run=bench_hop_read,
    title=_title,
    times=("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of both outputs "
           "(read, weights) with respect to the query, the keys and the values"),
    bytes_note=HOP_BYTES_NOTE,
    path_notes={
        TRITON: "the fused Triton kernel (kernels/hop.py)",
        EAGER: "cogdsl's torch backend: cogdsl.ops.attention.hop_read, plain autograd",
        COMPILED_REFERENCE: "torch.compile(cogdsl.ops.attention.hop_read)",
    },
    size_columns=("N", "D", "W"),
    size_cells=_size_cells,
    json_key="hop_bytes_definition",
    needs_gpu=HOP_NEEDS_GPU,
)
