"""The DNC step: :meth:`cogdsl.blocks.dnc.DNCGroup.step`, the whole step of one ``dnc_memory``, on every path.

Usage, allocation, write weights, write, temporal links, then the reads of the new memory, with 4 read heads
(``backward + content(cosine) + forward``) and 1 write head (``content(cosine) + allocate``), the DNC paper's
setup, float32, at batch B, width W and each slot count N: the forward alone and the forward plus the backward
of a fixed random projection of all six outputs (weightings, reads, memory, usage, links, precedence) with
respect to every input (interface vector, memory, last weightings, usage, links, precedence). Paths:
``triton`` (every op of the step on its kernel, CUDA only), ``eager`` (cogdsl's ``torch`` backend) and
``compiled-reference`` (``torch.compile`` of :func:`dnc_step` on the ``torch`` backend).

GB/s: the link matrix L (B, N, N) is counted with M, forward 2·B·(N² + N·W)·itemsize, forward + backward
5·B·(N² + N·W)·itemsize (:func:`dnc_step_bytes`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

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
    time_paths,
)
from cogdsl.blocks.dnc import DNCGroup

if TYPE_CHECKING:
    from cogdsl.bench.command import BenchOptions

DNC_STEP = "dnc step"
DEFAULT_DNC_SLOTS = (256, 1024)
#: The DNC step's heads: 4 read heads and 1 write head, as in the DNC paper.
DNC_READS, DNC_WRITES = 4, 1
#: The spec the DNC step's group is compiled from (the controller and the output only give it an interface).
DNC_SPEC = """cogdsl 1
model dnc_bench
input  x: 8
output y: 8 = sigmoid(ctrl, r)
lstm       ctrl(hidden=64) <- x, r@prev
dnc_memory mem(slots={slots}, width={width})
write      w(heads={writes}) on mem by ctrl: content(cosine) + allocate
read       r(heads={reads}) on mem by ctrl: backward + content(cosine) + forward
"""
DNC_BYTES_NOTE = ("GB/s = bytes that must move / time, the link matrix L (B, N, N) and the memory M read once and "
                  "written once: fwd 2·B·(N² + N·W)·{size} (L and M read, L' and M' written); fwd+bwd "
                  "5·B·(N² + N·W)·{size} (adds the backward's reads of L, M, dL', dM' and writes of dL, dM); "
                  "usage, precedence and weightings (B·N each) are not counted")


def dnc_step_bytes(batch: int, slots: int, width: int, write_heads: int = DNC_WRITES,
                   itemsize: int = 4) -> tuple[int, int]:
    """(forward, forward + backward) bytes that must move in the DNC step: 2·S and 5·S, S = B·(K·N² + N·W) elements.

    The model: each write head's link matrix L (N x N) and the memory M (N x W) are the state that
    must be read once and written once (L and M read, L' and M' written; the directional reads
    and the content reads can use L' and M' as they are made). The backward adds 3 more of each:
    the reads of L, M and of the incoming dL', dM', and the writes of dL, dM. Usage, precedence
    and the weightings are B·N each, small next to B·N² at any N worth timing, and not counted.
    """
    elements = batch * (write_heads * slots * slots + slots * width)
    return 2 * elements * itemsize, 5 * elements * itemsize


def dnc_group(slots: int, width: int) -> tuple[DNCGroup, int]:
    """The group of one ``dnc_memory`` of ``slots`` x ``width`` with 4 read and 1 write head, and its interface size.

    Compiled from :data:`DNC_SPEC` by :func:`cogdsl.compile`, as any spec's group is.
    """
    import cogdsl
    from cogdsl.compiler.pipeline import parse_text

    text = DNC_SPEC.format(slots=slots, width=width, reads=DNC_READS, writes=DNC_WRITES)
    model = cogdsl.compile(parse_text(text, "<cogdsl bench: dnc step>", "cog"))
    group = model.groups[0]
    assert isinstance(group, DNCGroup)
    return group, model.shapes.interface_sizes[group.plan.controller]


def dnc_step_inputs(group: DNCGroup, interface_size: int, batch: int, device: torch.device,
                    seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Random inputs of :func:`dnc_step` in their ranges (requiring grad), and projections of its outputs.

    Returns (interface, memory, previous, usage, link, precedence): a random interface vector
    (B, I) (the step applies each field's activation), memory (B, N, W), last step's read and
    write weightings (B, R + K, N) as distributions over slots, usage (B, N) in [0, 1], links
    (B, K, N, N) non-negative with a zero diagonal and rows summing to at most 1, precedences
    (B, K, N) as distributions; and (gw, gr, gm, gu, gl, gp), the tensors the backward's loss
    projects each output onto.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    b, n, w = batch, group.slots, group.width
    r, k = group.plan.read_heads, group.plan.write_heads
    link = torch.rand(b, k, n, n, generator=generator)
    link.diagonal(dim1=-2, dim2=-1).zero_()
    link.div_(link.sum(-1, keepdim=True).clamp_min(1e-6)).mul_(torch.rand(b, k, n, 1, generator=generator))
    inputs = [
        normal(b, interface_size),  # interface
        normal(b, n, w),  # memory
        torch.softmax(normal(b, r + k, n), -1),  # previous weightings: distributions over slots
        torch.rand(b, n, generator=generator),  # usage in [0, 1]
        link,
        torch.softmax(normal(b, k, n), -1),  # precedence
    ]
    projections = [normal(b, r + k, n), normal(b, r, w), normal(b, n, w), normal(b, n), normal(b, k, n, n),
                   normal(b, k, n)]
    return ([t.to(device).requires_grad_(True) for t in inputs], [t.to(device) for t in projections])


def dnc_step(group: DNCGroup, interface: Tensor, memory: Tensor, previous: Tensor, usage: Tensor, link: Tensor,
             precedence: Tensor) -> tuple[Tensor, ...]:
    """:meth:`DNCGroup.step` with its state as arguments: (weights, reads, new memory, usage, link, precedence)."""
    state = dict(zip(group.state_keys, (usage, link, precedence), strict=True))
    result = group.step(interface, memory, previous, state)
    assert result.reads is not None and result.memory is not None
    return (result.weights, result.reads, result.memory, *(result.state[key] for key in group.state_keys))


def dnc_step_backends(device: torch.device, compile: bool) -> dict[str, str]:
    """Path name -> the backend forced around :func:`dnc_step`, for each path that runs here."""
    backends = {TRITON: "triton"} if device.type == "cuda" else {}
    backends[EAGER] = "torch"
    if compile:
        backends[COMPILED_REFERENCE] = "torch"  # compiled in time_step, one size at a time
    return backends


def bench_dnc_step(options: BenchOptions, device: torch.device, *, timing: Timing,
                   progress: Callable[[str], None]) -> list[Row]:
    """One row per (slot count, path): the DNC step's forward and forward+backward times."""
    rows: list[Row] = []
    for slots in options.dnc_slots:
        group, interface_size = dnc_group(slots, options.width)
        group.to(device)
        inputs, projections = dnc_step_inputs(group, interface_size, options.batch, device)
        nbytes = dnc_step_bytes(options.batch, slots, options.width, group.plan.write_heads, inputs[1].element_size())
        template = Row(DNC_STEP, "", options.batch, slots, options.width, 1, *nbytes)
        step = partial(dnc_step, group)
        rows += time_paths(template, {path: (step, backend) for path, backend in
                                      dnc_step_backends(device, options.compile).items()},
                           inputs, projections, label=f"dnc step, N={slots}", timing=timing, device=device,
                           progress=progress)
        del inputs, projections
        free(device)
    return rows


def _title(first: Row, model: str | None) -> str:
    return (f"dnc step: DNCGroup.step of one dnc_memory, B={first.batch}, W={first.width}, {DNC_READS} read "
            f"heads (backward + content + forward) + {DNC_WRITES} write head (content + allocate), float32")


SECTION = Section(
    name=DNC_STEP,
    run=bench_dnc_step,
    title=_title,
    times=("ms fwd: forward under no_grad; ms fwd+bwd: forward + backward of a projection of all 6 outputs "
           "(weightings, reads, memory, usage, links, precedence)"),
    bytes_note=DNC_BYTES_NOTE,
    path_notes={
        TRITON: "every op of the step on its Triton kernel",
        EAGER: "cogdsl's torch backend",
        COMPILED_REFERENCE: "torch.compile of the eager step",
    },
    json_key="dnc_bytes_definition",
)
